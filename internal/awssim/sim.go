package awssim

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/patchgate/patchgate/internal/clock"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// Instance is one simulated managed instance.
type Instance struct {
	ID       string
	Name     string
	Account  string
	Region   string
	Platform string
	Tags     map[string]string
	Ping     string
	Behavior string
	Missing  int
	Findings []FindingSpec
	Coverage string
	// StillMissing and FailedAfter are what a successful Install leaves.
	StillMissing, FailedAfter int
	NoRebootHappens           bool
	// SnapshotFails and PreInstallHookFails: see Group.
	SnapshotFails, PreInstallHookFails bool
	// ScanDelay is how long after a patch the rescan happens.
	ScanDelay time.Duration
	// num is the instance's number, the key of its realistic draws.
	num int
	// baselineScan is the last scan before the scenario started.
	baselineScan time.Time
	// installs are the Install invocations that reached this instance.
	installs []*invocation
	sim      *Sim // for the patches released since the start (patches.go)
}

type regionKey struct{ account, region string }

// Sim is the simulated AWS.
type Sim struct {
	clock clock.Clock
	sc    *Scenario

	mu             sync.Mutex
	fleet          map[regionKey][]*Instance // sorted by id
	byID           map[string]*Instance
	commands       map[regionKey][]*command
	cmdByID        map[string]*command
	params         map[regionKey]map[string]*parameter
	patchBaselines map[regionKey]*baselineState
	keys           map[string]string // access key id -> account
	calls          map[string]int
	sends          []SendRecord
	metrics        []Metric
	faults         map[string]*fault
	limits         map[string]*bucket // per-operation rate limits
	throttled      map[string]int     // ThrottlingException answers per operation
	rng            *rand.Rand
	nextCmd        int
	nextKey        int
	s3             *s3State     // s3.go; made on first use
	releases       []release    // patches.go
	safety         *safetyState // safety.go
	// The realistic model (realism.go): nil unless Scenario.Realism is set.
	real       *Realism
	origin     time.Time            // the clock when the simulator was made
	catalogue  []FindingSpec        // the CVEs generated findings draw from
	realLimits map[string]*bucket   // per operation and account-region
	others     map[regionKey]*other // other tools' commands, made as time passes
}

// SendRecord is one accepted SendCommand, for assertions.
type SendRecord struct {
	Account, Region, CommandID, Comment string
	InstanceIDs                         []string
	Parameters                          map[string][]string
	At                                  time.Time
}

type fault struct {
	throttle int // answer ThrottlingException this many more times
	drop     int // apply, then drop the response this many more times
	truncate int // apply, then answer 200 with half the body this many more times
	fail     int // answer 500 InternalServerError without applying this many more times
}

// New builds a simulator over the scenario, on clock c (nil: the wall clock).
func New(sc *Scenario, c clock.Clock) *Sim {
	if c == nil {
		c = clock.Real{}
	}
	if sc.PatchDuration == 0 {
		sc.PatchDuration = 40 * time.Minute
	}
	s := &Sim{clock: c, sc: sc, fleet: map[regionKey][]*Instance{}, byID: map[string]*Instance{},
		commands: map[regionKey][]*command{}, cmdByID: map[string]*command{}, params: map[regionKey]map[string]*parameter{}, keys: map[string]string{},
		calls: map[string]int{}, faults: map[string]*fault{}, limits: map[string]*bucket{}, throttled: map[string]int{}, rng: rand.New(rand.NewPCG(1, 2))}
	for op, r := range sc.RateLimits {
		s.limits[op] = &bucket{rate: r, burst: max(r, 1), tokens: max(r, 1), at: c.Now()}
	}
	s.safety = newSafety(sc, c.Now())
	s.origin = c.Now()
	if sc.Realism != nil {
		r := *sc.Realism
		r.fill()
		s.real, s.catalogue = &r, r.catalogue()
		s.realLimits, s.others = map[string]*bucket{}, map[regionKey]*other{}
	}
	n := 0
	for _, g := range sc.Groups {
		acct := g.Account
		if acct == "" {
			acct = sc.Accounts[0]
		}
		for i := 0; i < g.Count; i++ {
			n++
			in := &Instance{ID: fmt.Sprintf("i-%017x", n), Name: fmt.Sprintf("%s-%d", g.Name, i+1), Account: acct, Region: g.Region,
				Platform: g.Platform, Tags: g.Tags, Ping: g.Ping, Behavior: g.Behavior, Missing: g.Missing,
				Findings: g.Findings, Coverage: g.Coverage, ScanDelay: g.ScanDelay, StillMissing: g.StillMissing, FailedAfter: g.FailedAfter, NoRebootHappens: g.NoRebootHappens, baselineScan: c.Now().Add(-6 * time.Hour),
				SnapshotFails: g.SnapshotFails, PreInstallHookFails: g.PreInstallHookFails, num: n}
			if in.ScanDelay == 0 {
				in.ScanDelay = 10 * time.Minute
			}
			if in.Coverage == "" {
				in.Coverage = "SUCCESSFUL"
			}
			if in.Ping == "" {
				in.Ping = "Online"
			}
			if in.Platform == "" {
				in.Platform = "Amazon Linux"
			}
			k := regionKey{acct, g.Region}
			s.fleet[k] = append(s.fleet[k], in)
			s.byID[in.ID] = in
			in.sim = s
		}
	}
	s.releases = releasesOf(sc, c.Now())
	return s
}

// Instances returns the instances of an account and region.
func (s *Sim) Instances(account, region string) []*Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Instance(nil), s.fleet[regionKey{account, region}]...)
}

// Calls returns the number of calls per operation ("ssm:SendCommand").
func (s *Sim) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// Sends returns every accepted SendCommand.
func (s *Sim) Sends() []SendRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SendRecord(nil), s.sends...)
}

// Throttle makes the next n calls of op ("ssm:SendCommand") fail with ThrottlingException.
func (s *Sim) Throttle(op string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault(op).throttle += n
}

// DropResponse makes the next n calls of op take effect and then lose
// their response (the connection is closed), as a network failure would.
func (s *Sim) DropResponse(op string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault(op).drop += n
}

func (s *Sim) fault(op string) *fault {
	f := s.faults[op]
	if f == nil {
		f = &fault{}
		s.faults[op] = f
	}
	return f
}

// SetPing changes an instance's agent status.
func (s *Sim) SetPing(id, ping string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in := s.byID[id]; in != nil {
		in.Ping = ping
	}
}

// AccessKeyFor returns static credentials that the simulator maps to account.
func AccessKeyFor(account string) string { return "AKIASIM" + account }

var (
	credRe   = regexp.MustCompile(`Credential=([^/]+)/[0-9]{8}/([^/]+)/([^/]+)/aws4_request`)
	simKeyRe = regexp.MustCompile(`^(AKIASIM|ASIASIM)([0-9]{12})`)
)

// caller returns the account and region of a signed request.
func (s *Sim) caller(r *http.Request) (account, region, service string) {
	m := credRe.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return s.sc.Accounts[0], "us-east-1", ""
	}
	account = s.sc.Accounts[0]
	if km := simKeyRe.FindStringSubmatch(m[1]); km != nil {
		account = km[2]
	}
	return account, m[2], m[3]
}

// ServeHTTP routes a request to the protocol it speaks.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_sim/stats" {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"calls": s.Calls(), "sends": len(s.Sends())})
		return
	}
	if s.sc.Latency > 0 {
		time.Sleep(s.sc.Latency)
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if r.Header.Get("Content-Encoding") == "gzip" {
		// The SDK compresses large PutMetricData requests.
		if zr, err := gzip.NewReader(bytes.NewReader(body)); err == nil {
			if plain, err := io.ReadAll(io.LimitReader(zr, 50<<20)); err == nil {
				body = plain
			}
		}
	}
	account, region, service := s.caller(r)
	if s.deniedCall(w, r, service) {
		return
	}
	if service == "s3" {
		s.serveS3(w, r, body, account, region)
		return
	}
	if target := r.Header.Get("X-Amz-Target"); strings.HasPrefix(target, "AmazonSSM.") {
		s.serveJSON(w, "ssm:"+strings.TrimPrefix(target, "AmazonSSM."), regionKey{account, region}, body, func(op string) (any, error) {
			return s.ssm(op, account, region, body)
		})
		return
	}
	if op, ok := strings.CutPrefix(r.URL.Path, "/service/GraniteServiceVersion20100801/operation/"); ok {
		s.serveCloudWatch(w, op, body, account, region)
		return
	}
	if r.Method == http.MethodPost && (r.URL.Path == "/findings/list" || r.URL.Path == "/coverage/list") {
		s.serveInspector(w, r.URL.Path, body, account, region)
		return
	}
	if s.serveSafety(w, r, body, account, region) {
		return
	}
	if strings.Contains(r.Header.Get("Content-Type"), "x-www-form-urlencoded") {
		s.serveSTS(w, r, body, account)
		return
	}
	http.Error(w, "awssim: unsupported request "+r.Method+" "+r.URL.Path, http.StatusNotImplemented)
}

// apiError is an error in AWS's shape.
type apiError struct {
	Code    string
	Message string
	Status  int
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func validation(format string, args ...any) error {
	return &apiError{Code: "ValidationException", Message: fmt.Sprintf(format, args...), Status: 400}
}

// preflight counts the call and applies injected faults. It returns drop
// when the response must be lost after the call takes effect.
func (s *Sim) preflight(op string) (err error, drop bool) {
	return s.preflightIn(op, regionKey{})
}

// preflightIn is preflight for a call in account-region k, where the
// realistic model's per-account-region rate limits apply.
func (s *Sim) preflightIn(op string, k regionKey) (err error, drop bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[op]++
	throttle := &apiError{Code: "ThrottlingException", Message: "Rate exceeded", Status: 400}
	if b := s.limits[op]; b != nil && !b.take(s.clock.Now()) {
		s.throttled[op]++
		return throttle, false
	}
	if !s.realLimit(op, k) {
		s.throttled[op]++
		return throttle, false
	}
	if f := s.faults[op]; f != nil {
		if f.throttle > 0 {
			f.throttle--
			s.throttled[op]++
			return throttle, false
		}
		if f.fail > 0 {
			f.fail--
			return &apiError{Code: "InternalServerError", Message: "awssim: injected server error", Status: 500}, false
		}
		if f.drop > 0 {
			f.drop--
			drop = true
		}
	}
	if s.sc.ThrottleRate > 0 && s.rng.Float64() < s.sc.ThrottleRate {
		s.throttled[op]++
		return throttle, false
	}
	return nil, drop
}

func (s *Sim) serveJSON(w http.ResponseWriter, op string, k regionKey, body []byte, handle func(op string) (any, error)) {
	err, drop := s.preflightIn(op, k)
	var out any
	if err == nil {
		out, err = handle(strings.TrimPrefix(op, "ssm:"))
	}
	if drop {
		dropConnection(w)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if err != nil {
		ae, ok := err.(*apiError)
		if !ok {
			ae = &apiError{Code: "InternalServerError", Message: err.Error(), Status: 500}
		}
		w.Header().Set("X-Amzn-ErrorType", ae.Code)
		w.WriteHeader(ae.Status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": ae.Code, "message": ae.Message})
		return
	}
	if s.takeTruncate(op) {
		b, _ := json.Marshal(out)
		writeTruncated(w, b)
		return
	}
	_ = json.NewEncoder(w).Encode(out)
}

// dropConnection closes the connection without a response.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func epoch(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}
