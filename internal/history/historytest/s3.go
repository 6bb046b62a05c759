// Package historytest is an S3 for tests of the history store: enough of
// PutObject, GetObject and ListObjectsV2 (path-style) for the real SDK
// client, on loopback.
package historytest

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// S3 is a path-style S3 for PutObject, GetObject and ListObjectsV2,
// paging at pageSize keys so that the store must follow continuations.
type S3 struct {
	mu       sync.Mutex
	Objects  map[string][]byte // bucket/key
	PageSize int
	Lists    int // ListObjectsV2 calls
}

// ServeHTTP answers one S3 call.
func (f *S3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch {
	case r.Method == http.MethodPut:
		data, _ := io.ReadAll(r.Body)
		f.Objects[bucket+"/"+key] = data
		w.Header().Set("ETag", `"x"`)
	case r.Method == http.MethodGet && key == "" && r.URL.Query().Get("list-type") == "2":
		f.Lists++
		prefix, after := r.URL.Query().Get("prefix"), r.URL.Query().Get("continuation-token")
		var keys []string
		for k := range f.Objects {
			if b, kk, _ := strings.Cut(k, "/"); b == bucket && strings.HasPrefix(kk, prefix) && kk > after {
				keys = append(keys, kk)
			}
		}
		sort.Strings(keys)
		type content struct{ Key string }
		out := struct {
			XMLName               xml.Name `xml:"ListBucketResult"`
			Contents              []content
			IsTruncated           bool
			NextContinuationToken string `xml:",omitempty"`
		}{}
		page := f.PageSize
		if page <= 0 {
			page = 1000 // S3's default
		}
		if len(keys) > page {
			keys = keys[:page]
			out.IsTruncated, out.NextContinuationToken = true, keys[len(keys)-1]
		}
		for _, k := range keys {
			out.Contents = append(out.Contents, content{k})
		}
		w.Header().Set("Content-Type", "application/xml")
		_ = xml.NewEncoder(w).Encode(out)
	case r.Method == http.MethodGet:
		data, ok := f.Objects[bucket+"/"+key]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `<Error><Code>NoSuchKey</Code><Message>no such key</Message></Error>`)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		_, _ = w.Write(data)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}
