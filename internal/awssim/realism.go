package awssim

import (
	"fmt"
	"math"
	"time"
)

// Realism is the realistic fleet model (issue #19): heterogeneous patch
// times, agent start delays, reboots, a few failures, Inspector rescans on
// an inventory cadence, realistic finding volumes, other tools' commands
// and per-operation rate limits. Every draw is a pure function of Seed and
// the instance (or account-region) it concerns, so the same seed gives the
// same fleet and the same timings whatever the order of calls. A zero
// field takes its default from Realistic; see docs/simulator.md.
type Realism struct {
	Seed int64 `yaml:"seed"`

	// Patch durations: lognormal around PatchMedian with shape PatchSigma,
	// clipped to [PatchMin, PatchMax]; a SlowShare of installs take
	// between PatchMax and SlowMax instead.
	PatchMedian time.Duration `yaml:"patchMedian"`
	PatchSigma  float64       `yaml:"patchSigma"`
	PatchMin    time.Duration `yaml:"patchMin"`
	PatchMax    time.Duration `yaml:"patchMax"`
	SlowShare   float64       `yaml:"slowShare"`
	SlowMax     time.Duration `yaml:"slowMax"`

	// AgentDelay: how long an invocation stays Pending before the agent
	// starts it, lognormal around AgentDelayMedian, at most AgentDelayMax.
	AgentDelayMedian time.Duration `yaml:"agentDelayMedian"`
	AgentDelayMax    time.Duration `yaml:"agentDelayMax"`

	// RebootShare of instances with missing patches need a reboot, which
	// under RebootIfNeeded adds RebootMin..RebootMax to the install (the
	// invocation stays InProgress through it).
	RebootShare float64       `yaml:"rebootShare"`
	RebootMin   time.Duration `yaml:"rebootMin"`
	RebootMax   time.Duration `yaml:"rebootMax"`

	// Shares of installs that fail (Failed), time out in execution
	// (TimedOut/ExecutionTimedOut) and are never delivered
	// (TimedOut/DeliveryTimedOut after the command's delivery timeout).
	// Use -1 for none: 0 takes the default.
	FailureShare       float64 `yaml:"failureShare"`
	TimeoutShare       float64 `yaml:"timeoutShare"`
	UndeliverableShare float64 `yaml:"undeliverableShare"`

	// Inspector: each instance's inventory is collected every
	// InventoryInterval at its own phase, each pass moved by up to
	// ±InventoryJitter/2; a patch shows at the first pass after it ends.
	InventoryInterval time.Duration `yaml:"inventoryInterval"`
	InventoryJitter   time.Duration `yaml:"inventoryJitter"`

	// Findings per instance: lognormal with mean FindingsMean, at most
	// FindingsMax. Of the CVEs, NoFixShare have no fix and PartialFixShare
	// a partial one; UnpatchedShare of an instance's fixable findings are
	// not fixed by the baseline (stay ACTIVE after patching).
	FindingsMean    float64 `yaml:"findingsMean"`
	FindingsMax     int     `yaml:"findingsMax"`
	NoFixShare      float64 `yaml:"noFixShare"`
	PartialFixShare float64 `yaml:"partialFixShare"`
	UnpatchedShare  float64 `yaml:"unpatchedShare"`

	// OtherCommandsPerHour: commands other tools send per account-region
	// (AWS-RunShellScript, AWS-RunPowerShellScript, AWS-ConfigureAWSPackage,
	// AWS-UpdateSSMAgent), listed by ListCommands beside patchgate's.
	// Use -1 for none.
	OtherCommandsPerHour float64 `yaml:"otherCommandsPerHour"`

	// RateLimits are calls a second per operation per account-region
	// ("ssm:SendCommand": 5), burst one second's worth; above them the
	// call is answered ThrottlingException. An operation set to -1 is not
	// limited. Entries here replace the defaults one by one.
	RateLimits map[string]float64 `yaml:"rateLimits"`
}

// DefaultRateLimits are the realistic model's per-account-region call
// rates. AWS does not publish per-operation rates for these SSM and
// Inspector operations (its documentation only says both throttle per
// account and Region and answer ThrottlingException: "Rate exceeded");
// the figures are deliberately conservative estimates, in the range
// operators report before throttling starts, so that a client that
// bursts is throttled here before it would be in AWS.
var DefaultRateLimits = map[string]float64{
	"ssm:SendCommand":                    5,
	"ssm:ListCommands":                   10,
	"ssm:ListCommandInvocations":         10,
	"ssm:GetCommandInvocation":           20,
	"ssm:CancelCommand":                  5,
	"ssm:DescribeInstanceInformation":    10,
	"ssm:DescribeInstancePatchStates":    10,
	"ssm:DescribeInstancePatches":        10,
	"inspector2:ListFindings":            10,
	"inspector2:ListCoverage":            10,
	"inspector2:ListFindingAggregations": 5,
}

// Realistic returns the realistic fleet model with its defaults, seeded.
func Realistic(seed int64) *Realism {
	r := &Realism{Seed: seed}
	r.fill()
	return r
}

// fill gives every zero field its default.
func (r *Realism) fill() {
	dur := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	num := func(p *float64, v float64) {
		if *p == 0 {
			*p = v
		}
	}
	dur(&r.PatchMedian, 27*time.Minute)
	num(&r.PatchSigma, 0.55)
	dur(&r.PatchMin, 5*time.Minute)
	dur(&r.PatchMax, 90*time.Minute)
	num(&r.SlowShare, 0.015)
	dur(&r.SlowMax, 3*time.Hour)
	dur(&r.AgentDelayMedian, 15*time.Second)
	dur(&r.AgentDelayMax, 3*time.Minute)
	num(&r.RebootShare, 0.5)
	dur(&r.RebootMin, 2*time.Minute)
	dur(&r.RebootMax, 8*time.Minute)
	num(&r.FailureShare, 0.003)
	num(&r.TimeoutShare, 0.0005)
	num(&r.UndeliverableShare, 0.0005)
	dur(&r.InventoryInterval, 30*time.Minute)
	dur(&r.InventoryJitter, 6*time.Minute)
	num(&r.FindingsMean, 30)
	if r.FindingsMax == 0 {
		r.FindingsMax = 300
	}
	num(&r.NoFixShare, 0.12)
	num(&r.PartialFixShare, 0.04)
	num(&r.UnpatchedShare, 0.08)
	num(&r.OtherCommandsPerHour, 4)
	limits := make(map[string]float64, len(DefaultRateLimits))
	for op, v := range DefaultRateLimits {
		limits[op] = v
	}
	for op, v := range r.RateLimits {
		limits[op] = v
	}
	r.RateLimits = limits
}

// share reads a share field: negative means none.
func share(v float64) float64 { return max(v, 0) }

func (r *Realism) validate() error {
	switch {
	case r.PatchMin > r.PatchMax || r.PatchMax > r.SlowMax:
		return fmt.Errorf("scenario: realism: want patchMin <= patchMax <= slowMax")
	case r.RebootMin > r.RebootMax:
		return fmt.Errorf("scenario: realism: want rebootMin <= rebootMax")
	case r.InventoryJitter > r.InventoryInterval/2:
		return fmt.Errorf("scenario: realism: inventoryJitter must be at most half of inventoryInterval")
	case r.FindingsMax < 0 || r.FindingsMean < 0:
		return fmt.Errorf("scenario: realism: findingsMean and findingsMax must be >= 0")
	case share(r.FailureShare)+share(r.TimeoutShare)+share(r.UndeliverableShare) > 1:
		return fmt.Errorf("scenario: realism: failure, timeout and undeliverable shares add up to more than 1")
	}
	return nil
}

// Draw streams: each draw of an instance hashes (seed, stream, instance,
// attempt, index), so draws are independent of one another and of the
// order in which the simulator makes them.
const (
	streamPatch = iota + 1
	streamSlow
	streamOutcome
	streamAgent
	streamReboot
	streamRebootLen
	streamPhase
	streamPass
	streamCount
	streamCVEStart
	streamCVEStep
	streamUnpatched
	streamCatalogue
	streamOther
)

// mix is splitmix64 over the parts.
func mix(parts ...uint64) uint64 {
	h := uint64(0x9E3779B97F4A7C15)
	for _, p := range parts {
		h = mixStep(h, p)
	}
	return h
}

func mixStep(h, p uint64) uint64 {
	h ^= p
	h += 0x9E3779B97F4A7C15
	z := h
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// hash is mix over the seed and the parts (without allocating: generated
// findings are drawn millions of times a run).
func (r *Realism) hash(parts ...uint64) uint64 {
	h := mixStep(0x9E3779B97F4A7C15, uint64(r.Seed))
	for _, p := range parts {
		h = mixStep(h, p)
	}
	return h
}

func unitOf(h uint64) float64 { return float64(h>>11) / (1 << 53) }

// unit is a uniform draw in [0, 1).
func (r *Realism) unit(parts ...uint64) float64 { return unitOf(r.hash(parts...)) }

// normal is a standard normal draw (Box-Muller).
func (r *Realism) normal(parts ...uint64) float64 {
	h := r.hash(parts...)
	u1, u2 := unitOf(mixStep(h, 1)), unitOf(mixStep(h, 2))
	return math.Sqrt(-2*math.Log(1-u1)) * math.Cos(2*math.Pi*u2)
}

// course is one install's drawn course on one instance.
type course struct {
	delay   time.Duration // Pending before the agent starts it
	run     time.Duration // running time, reboot included
	reboot  time.Duration // part of run spent rebooting (0: none)
	outcome string        // "", Failed, ExecutionTimedOut, DeliveryTimedOut
}

// course draws an install's course. attempt counts the installs the
// instance had before, so that a retry draws afresh but repeatably.
func (r *Realism) course(n, attempt int, missing int, rebootIfNeeded bool) course {
	id, a := uint64(n), uint64(attempt)
	var c course
	d := float64(r.PatchMedian) * math.Exp(r.PatchSigma*r.normal(streamPatch, id, a))
	d = min(max(d, float64(r.PatchMin)), float64(r.PatchMax))
	if r.unit(streamSlow, id, a) < share(r.SlowShare) {
		d = float64(r.PatchMax) + r.unit(streamSlow, id, a, 1)*float64(r.SlowMax-r.PatchMax)
	}
	c.run = time.Duration(d).Round(time.Second)
	ad := float64(r.AgentDelayMedian) * math.Exp(r.normal(streamAgent, id, a))
	c.delay = time.Duration(min(max(ad, float64(time.Second)), float64(r.AgentDelayMax))).Round(time.Second)
	if rebootIfNeeded && missing > 0 && r.unit(streamReboot, id, a) < share(r.RebootShare) {
		c.reboot = (r.RebootMin + time.Duration(r.unit(streamRebootLen, id, a)*float64(r.RebootMax-r.RebootMin))).Round(time.Second)
		c.run += c.reboot
	}
	switch u := r.unit(streamOutcome, id, a); {
	case u < share(r.FailureShare):
		c.outcome = "Failed"
		// A failed install stops early: it did not get through its patches.
		c.run = max(c.run/3, r.PatchMin/2)
		c.reboot = 0
	case u < share(r.FailureShare)+share(r.TimeoutShare):
		c.outcome = "ExecutionTimedOut"
	case u < share(r.FailureShare)+share(r.TimeoutShare)+share(r.UndeliverableShare):
		c.outcome = "DeliveryTimedOut"
	}
	return c
}

// inventory passes of instance n: pass k is at origin + phase + k*interval
// + jitter(k), |jitter| <= InventoryJitter/2, so passes stay in order.
func (r *Realism) pass(origin time.Time, n int, k int64) time.Time {
	// Whole seconds: lastScannedAt travels as epoch seconds with millis.
	phase := time.Duration(r.unit(streamPhase, uint64(n)) * float64(r.InventoryInterval)).Round(time.Second)
	jitter := time.Duration((r.unit(streamPass, uint64(n), uint64(k)) - 0.5) * float64(r.InventoryJitter)).Round(time.Second)
	return origin.Add(phase + time.Duration(k)*r.InventoryInterval + jitter)
}

// passIndex is the pass number nearest to t (without jitter).
func (r *Realism) passIndex(origin time.Time, n int, t time.Time) int64 {
	phase := time.Duration(r.unit(streamPhase, uint64(n)) * float64(r.InventoryInterval)).Round(time.Second)
	return int64(math.Floor(float64(t.Sub(origin)-phase) / float64(r.InventoryInterval)))
}

// lastPass is the last inventory pass at or before t.
func (r *Realism) lastPass(origin time.Time, n int, t time.Time) time.Time {
	k := r.passIndex(origin, n, t)
	for j := k + 1; ; j-- {
		if p := r.pass(origin, n, j); !p.After(t) {
			return p
		}
	}
}

// firstPass is the first inventory pass at or after t.
func (r *Realism) firstPass(origin time.Time, n int, t time.Time) time.Time {
	k := r.passIndex(origin, n, t)
	for j := k - 1; ; j++ {
		if p := r.pass(origin, n, j); !p.Before(t) {
			return p
		}
	}
}

// findingCount is how many generated findings instance n has.
func (r *Realism) findingCount(n int) int {
	if r.FindingsMean <= 0 || r.FindingsMax <= 0 {
		return 0
	}
	const sigma = 1.1
	mu := math.Log(r.FindingsMean) - sigma*sigma/2
	c := math.Exp(mu + sigma*r.normal(streamCount, uint64(n)))
	return min(int(math.Round(c)), r.FindingsMax)
}

// catalogueSize is the number of distinct CVEs the generated findings
// draw from (a prime, so that a stride walks distinct entries).
const catalogueSize = 4093

var packages = []string{"openssl", "openssh-server", "glibc", "kernel", "curl", "libxml2", "expat", "sudo", "bash", "systemd",
	"python3", "perl", "libtiff", "libpng", "zlib", "xz-libs", "krb5-libs", "nss", "gnutls", "sqlite", "vim-minimal",
	"tar", "gzip", "rsync", "bind-libs", "libssh2", "libcurl", "pcre2", "libarchive", "polkit", "dbus", "git", "ruby",
	"nodejs", "java-17-amazon-corretto", "containerd", "runc", "docker", "libgcrypt", "libksba"}

// catalogue is the CVEs generated findings refer to: a CVE has the same
// severity, package and fix on every instance.
func (r *Realism) catalogue() []FindingSpec {
	out := make([]FindingSpec, catalogueSize)
	for c := range out {
		u := r.unit(streamCatalogue, uint64(c))
		sev := "LOW"
		switch {
		case u < 0.03:
			sev = "CRITICAL"
		case u < 0.17:
			sev = "HIGH"
		case u < 0.65:
			sev = "MEDIUM"
		case u < 0.95:
			sev = "LOW"
		case u < 0.98:
			sev = "INFORMATIONAL"
		default:
			sev = "UNTRIAGED"
		}
		fix := "YES"
		switch f := r.unit(streamCatalogue, uint64(c), 1); {
		case f < share(r.NoFixShare):
			fix = "NO"
		case f < share(r.NoFixShare)+share(r.PartialFixShare):
			fix = "PARTIAL"
		}
		pkg := packages[r.hash(streamCatalogue, uint64(c), 2)%uint64(len(packages))]
		out[c] = FindingSpec{CVE: fmt.Sprintf("CVE-%d-%d", 2019+c%6, 10000+c), Severity: sev, Package: pkg, Fix: fix}
	}
	return out
}

// finding is generated finding j of instance n (j < findingCount(n)): a
// stride through the catalogue, so an instance has no CVE twice.
func (r *Realism) finding(cat []FindingSpec, n, j int) FindingSpec {
	start := r.hash(streamCVEStart, uint64(n)) % catalogueSize
	step := 1 + r.hash(streamCVEStep, uint64(n))%(catalogueSize-1)
	f := cat[(start+uint64(j)*step)%catalogueSize]
	f.Unpatched = f.Fix != "NO" && r.unit(streamUnpatched, uint64(n), uint64(j)) < share(r.UnpatchedShare)
	return f
}
