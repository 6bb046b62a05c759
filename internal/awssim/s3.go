package awssim

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Bucket is an S3 bucket of the scenario.
type Bucket struct {
	Name    string `yaml:"name"`
	Account string `yaml:"account"`
	Region  string `yaml:"region"`
}

// s3State is the simulated S3: buckets owned by one account in one region,
// each a flat map of keys. Guarded by Sim.mu.
type s3State struct {
	buckets map[string]*s3Bucket
	denied  map[string]bool // IAM actions answered AccessDenied ("s3:PutObject")
}

type s3Bucket struct {
	account, region string
	objects         map[string]*s3Object
}

type s3Object struct {
	data     []byte
	etag     string
	modified time.Time
}

// storage returns the S3 state, made on first use from the scenario's
// buckets. The caller holds s.mu.
func (s *Sim) storage() *s3State {
	if s.s3 == nil {
		s.s3 = &s3State{buckets: map[string]*s3Bucket{}, denied: map[string]bool{}}
		for _, b := range s.sc.Buckets {
			s.s3.buckets[b.Name] = &s3Bucket{account: b.Account, region: b.Region, objects: map[string]*s3Object{}}
		}
	}
	return s.s3
}

// CreateBucket adds an empty bucket owned by account in region.
func (s *Sim) CreateBucket(account, region, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.storage().buckets[name] = &s3Bucket{account: account, region: region, objects: map[string]*s3Object{}}
}

// Deny makes every call of an IAM action ("s3:PutObject", "ssm:GetParameter")
// answer AccessDenied, as a missing permission would.
func (s *Sim) Deny(action string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.storage().denied[action] = true
}

// Object returns an object's content, for assertions.
func (s *Sim) Object(bucket, key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.storage().buckets[bucket]
	if b == nil || b.objects[key] == nil {
		return nil, false
	}
	return append([]byte(nil), b.objects[key].data...), true
}

// Objects returns the keys of a bucket under prefix, sorted.
func (s *Sim) Objects(bucket, prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	if b := s.storage().buckets[bucket]; b != nil {
		for k := range b.objects {
			if strings.HasPrefix(k, prefix) {
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}

// SetObject writes an object directly, bypassing IAM and conditions: a
// test's way to corrupt or forge what a run later reads.
func (s *Sim) SetObject(bucket, key string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.storage().buckets[bucket]; b != nil {
		b.objects[key] = &s3Object{data: append([]byte(nil), data...), etag: etagOf(data), modified: s.clock.Now()}
	}
}

func etagOf(data []byte) string {
	sum := md5.Sum(data)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

// deniedCall answers AccessDenied for an IAM action the test denied, in the
// protocol of the request. It reports whether it answered.
func (s *Sim) deniedCall(w http.ResponseWriter, r *http.Request, service string) bool {
	action := ""
	if target := r.Header.Get("X-Amz-Target"); strings.HasPrefix(target, "AmazonSSM.") {
		action = "ssm:" + strings.TrimPrefix(target, "AmazonSSM.")
	} else if service == "s3" {
		action = "s3:" + s3Operation(r)
	}
	s.mu.Lock()
	denied := action != "" && s.s3 != nil && s.s3.denied[action]
	s.mu.Unlock()
	if !denied {
		return false
	}
	account, _, _ := s.caller(r)
	msg := fmt.Sprintf("User: arn:aws:sts::%s:assumed-role/patchgate/sim is not authorized to perform: %s because no identity-based policy allows the %s action", account, action, action)
	if service == "s3" {
		writeS3Error(w, &apiError{Code: "AccessDenied", Message: msg, Status: 403})
		return true
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", "AccessDeniedException")
	w.WriteHeader(400)
	fmt.Fprintf(w, `{"__type":"AccessDeniedException","message":%q}`, msg)
	return true
}

// s3Operation names the S3 call a path-style request makes.
func s3Operation(r *http.Request) string {
	_, key := s3Path(r)
	switch {
	case r.Method == http.MethodPut && key != "":
		return "PutObject"
	case r.Method == http.MethodGet && key != "":
		return "GetObject"
	case r.Method == http.MethodHead && key != "":
		return "HeadObject"
	case r.Method == http.MethodGet:
		// s3:ListBucket is the IAM action of ListObjectsV2.
		return "ListBucket"
	}
	return r.Method
}

func s3Path(r *http.Request) (bucket, key string) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	bucket, key, _ = strings.Cut(p, "/")
	return bucket, key
}

// serveS3 answers path-style S3 requests (the SDK with UsePathStyle):
// PutObject (with If-None-Match: * and If-Match), GetObject, HeadObject and
// ListObjectsV2.
func (s *Sim) serveS3(w http.ResponseWriter, r *http.Request, body []byte, account, region string) {
	op := s3Operation(r)
	err, drop := s.preflight("s3:" + op)
	if drop && err == nil {
		// Apply the call, then lose its response, as a network failure would.
		s.serveS3Call(discard{}, r, body, account, region, op)
		dropConnection(w)
		return
	}
	if err != nil {
		ae := err.(*apiError)
		if ae.Code == "ThrottlingException" {
			ae = &apiError{Code: "SlowDown", Message: "Please reduce your request rate.", Status: 503}
		}
		writeS3Error(w, ae)
		return
	}
	s.serveS3Call(w, r, body, account, region, op)
}

func (s *Sim) serveS3Call(w http.ResponseWriter, r *http.Request, body []byte, account, region, op string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name, key := s3Path(r)
	b := s.storage().buckets[name]
	switch {
	case b == nil:
		writeS3Error(w, &apiError{Code: "NoSuchBucket", Message: "The specified bucket does not exist", Status: 404})
		return
	case b.account != account:
		// No bucket policies are modelled: only the owner gets in.
		writeS3Error(w, &apiError{Code: "AccessDenied", Message: "Access Denied", Status: 403})
		return
	case b.region != region:
		writeS3Error(w, &apiError{Code: "AuthorizationHeaderMalformed", Message: fmt.Sprintf("The authorization header is malformed; the region '%s' is wrong; expecting '%s'", region, b.region), Status: 400})
		return
	}
	now := s.clock.Now()
	switch op {
	case "PutObject":
		data, err := decodeS3Body(r, body)
		if err != nil {
			writeS3Error(w, &apiError{Code: "InvalidRequest", Message: err.Error(), Status: 400})
			return
		}
		old := b.objects[key]
		if inm := r.Header.Get("If-None-Match"); inm != "" {
			if inm != "*" {
				writeS3Error(w, &apiError{Code: "NotImplemented", Message: "If-None-Match accepts only *", Status: 501})
				return
			}
			if old != nil {
				writeS3Error(w, &apiError{Code: "PreconditionFailed", Message: "At least one of the pre-conditions you specified did not hold", Status: 412})
				return
			}
		}
		if im := r.Header.Get("If-Match"); im != "" && (old == nil || old.etag != im) {
			code, status := "PreconditionFailed", 412
			if old == nil {
				code, status = "NoSuchKey", 404
			}
			writeS3Error(w, &apiError{Code: code, Message: "At least one of the pre-conditions you specified did not hold", Status: status})
			return
		}
		o := &s3Object{data: data, etag: etagOf(data), modified: now}
		b.objects[key] = o
		w.Header().Set("ETag", o.etag)
		w.WriteHeader(http.StatusOK)
	case "GetObject", "HeadObject":
		o := b.objects[key]
		if o == nil {
			writeS3Error(w, &apiError{Code: "NoSuchKey", Message: "The specified key does not exist.", Status: 404})
			return
		}
		w.Header().Set("ETag", o.etag)
		w.Header().Set("Last-Modified", o.modified.UTC().Format(http.TimeFormat))
		w.Header().Set("Content-Length", strconv.Itoa(len(o.data)))
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
		if op == "GetObject" {
			_, _ = w.Write(o.data)
		}
	case "ListBucket":
		q := r.URL.Query()
		if q.Get("list-type") != "2" {
			writeS3Error(w, &apiError{Code: "NotImplemented", Message: "awssim serves ListObjectsV2 only", Status: 501})
			return
		}
		s.listObjects(w, name, b, q)
	default:
		writeS3Error(w, &apiError{Code: "NotImplemented", Message: "awssim does not implement S3 " + r.Method + " " + r.URL.Path, Status: 501})
	}
}

func (s *Sim) listObjects(w http.ResponseWriter, name string, b *s3Bucket, q url.Values) {
	prefix, delim := q.Get("prefix"), q.Get("delimiter")
	maxKeys := 1000
	if v := q.Get("max-keys"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 && n < maxKeys {
			maxKeys = n
		}
	}
	after := q.Get("start-after")
	if tok := q.Get("continuation-token"); tok != "" {
		after = tok
	}
	var keys []string
	for k := range b.objects {
		if strings.HasPrefix(k, prefix) && k > after && !(strings.HasSuffix(after, delim) && delim != "" && strings.HasPrefix(k, after)) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	type content struct {
		Key          string
		LastModified string
		ETag         string
		Size         int
		StorageClass string
	}
	type commonPrefix struct{ Prefix string }
	out := struct {
		XMLName               xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
		Name                  string
		Prefix                string
		Delimiter             string `xml:",omitempty"`
		KeyCount              int
		MaxKeys               int
		IsTruncated           bool
		ContinuationToken     string `xml:",omitempty"`
		NextContinuationToken string `xml:",omitempty"`
		Contents              []content
		CommonPrefixes        []commonPrefix
	}{Name: name, Prefix: prefix, Delimiter: delim, MaxKeys: maxKeys, ContinuationToken: q.Get("continuation-token")}
	last := ""
	for _, k := range keys {
		item := k
		if delim != "" {
			if i := strings.Index(k[len(prefix):], delim); i >= 0 {
				item = k[:len(prefix)+i+len(delim)] // rolled up into a common prefix
			}
		}
		if item == last {
			continue
		}
		if out.KeyCount == maxKeys {
			out.IsTruncated, out.NextContinuationToken = true, last
			break
		}
		if item != k {
			out.CommonPrefixes = append(out.CommonPrefixes, commonPrefix{item})
		} else {
			o := b.objects[k]
			out.Contents = append(out.Contents, content{Key: k, LastModified: o.modified.UTC().Format("2006-01-02T15:04:05.000Z"), ETag: o.etag, Size: len(o.data), StorageClass: "STANDARD"})
		}
		out.KeyCount++
		last = item
	}
	w.Header().Set("Content-Type", "application/xml")
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(out)
}

func writeS3Error(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(e.Status)
	var msg bytes.Buffer
	_ = xml.EscapeText(&msg, []byte(e.Message))
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>sim</RequestId></Error>`, e.Code, msg.String())
}

// decodeS3Body undoes aws-chunked content encoding (the SDK's streaming
// checksums), returning the object's bytes.
func decodeS3Body(r *http.Request, body []byte) ([]byte, error) {
	if !strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") {
		return body, nil
	}
	br := bufio.NewReader(bytes.NewReader(body))
	var out []byte
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("aws-chunked body: %w", err)
		}
		sizeText, _, _ := strings.Cut(strings.TrimSpace(line), ";")
		n, err := strconv.ParseInt(sizeText, 16, 64)
		if err != nil || n < 0 || n > int64(len(body)) {
			return nil, fmt.Errorf("aws-chunked body: bad chunk size %q", sizeText)
		}
		if n == 0 {
			return out, nil // trailers (checksums) follow; not verified
		}
		chunk := make([]byte, n)
		if _, err := io.ReadFull(br, chunk); err != nil {
			return nil, fmt.Errorf("aws-chunked body: %w", err)
		}
		out = append(out, chunk...)
		if _, err := br.ReadString('\n'); err != nil {
			return nil, fmt.Errorf("aws-chunked body: %w", err)
		}
	}
}

// SetParameter writes a Parameter Store value directly (a test's forgery).
func (s *Sim) SetParameter(account, region, name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := regionKey{account, region}
	if s.params[k] == nil {
		s.params[k] = map[string]*parameter{}
	}
	s.params[k][name] = &parameter{Name: name, Value: value, Type: "String", Version: 1, Modified: s.clock.Now()}
}

// DeleteParameter removes a parameter directly (a write that never happened).
func (s *Sim) DeleteParameter(account, region, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.params[regionKey{account, region}], name)
}

// validateStorage checks the scenario's buckets and releases.
func (sc *Scenario) validateStorage() error {
	seen := map[string]bool{}
	for i, b := range sc.Buckets {
		if b.Name == "" || b.Region == "" || b.Account == "" {
			return fmt.Errorf("scenario: bucket %d needs a name, an account and a region", i)
		}
		if seen[b.Name] {
			return fmt.Errorf("scenario: bucket %s is listed twice (bucket names are global)", b.Name)
		}
		seen[b.Name] = true
	}
	for i, r := range sc.Releases {
		if r.Count < 1 || r.After < 0 {
			return fmt.Errorf("scenario: release %d needs a count of at least 1 and an after of 0 or more", i)
		}
	}
	return nil
}

// discard is a ResponseWriter whose response nobody reads: a call applied
// before its response is dropped.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
