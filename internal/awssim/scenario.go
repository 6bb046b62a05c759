// Package awssim is a loopback AWS for tests, the demo and benchmarks: an
// http.Handler speaking the real wire protocols (SSM awsJson1.1, STS
// awsQuery) so that unmodified aws-sdk-go-v2 clients reach it through
// BaseEndpoint, and a fleet model in which patching changes what later
// calls report. A scaled clock makes a 40-minute patch take milliseconds.
package awssim

import (
	"fmt"
	"os"
	"time"

	"go.yaml.in/yaml/v3"
)

// Scenario describes the simulated estate. It is written in YAML; see
// docs/simulator.md.
type Scenario struct {
	// Accounts are the account ids; the first one is the account of any
	// credentials the simulator did not issue.
	Accounts []string `yaml:"accounts"`
	// Groups are sets of alike instances.
	Groups []Group `yaml:"groups"`
	// PatchDuration is how long an Install takes on one instance (clock time).
	PatchDuration time.Duration `yaml:"patchDuration"`
	// ClosedCalendars are Change Calendar names whose state is CLOSED.
	ClosedCalendars []string `yaml:"closedCalendars"`
	// ThrottleRate is the share (0..1) of calls answered with ThrottlingException.
	ThrottleRate float64 `yaml:"throttleRate"`
	// Latency is added to every call (wall time, not scaled).
	Latency time.Duration `yaml:"latency"`
	// InvocationDelay is how long GetCommandInvocation answers
	// InvocationDoesNotExist after a send (clock time).
	InvocationDelay time.Duration `yaml:"invocationDelay"`
	// ListingDelay is how long a new command is missing from ListCommands
	// and ListCommandInvocations (clock time): SSM's listings are
	// eventually consistent.
	ListingDelay time.Duration `yaml:"listingDelay"`
	// RateLimits answer ThrottlingException above this many calls a second
	// (clock time) per operation, e.g. {"ssm:SendCommand": 3}; the burst is
	// one second's worth.
	RateLimits map[string]float64 `yaml:"rateLimits"`
	// Buckets are S3 buckets (s3.go); Releases publish new patches while
	// the scenario runs (patches.go).
	Buckets  []Bucket  `yaml:"buckets"`
	Releases []Release `yaml:"releases"`
	// Safety (issue #20, safety.go): alarms with scheduled state changes,
	// how long an EBS snapshot stays pending (default 5m), and SSM
	// documents that exist besides AWS-owned ones (hook documents).
	Alarms           []AlarmSpec   `yaml:"alarms"`
	SnapshotDuration time.Duration `yaml:"snapshotDuration"`
	Documents        []string      `yaml:"documents"`
	// Realism switches on the realistic fleet model (realism.go); nil
	// keeps the regular model above. Realistic(seed) gives the defaults.
	Realism *Realism `yaml:"realism"`
}

// Group is Count instances that share everything but their id.
type Group struct {
	Account  string            `yaml:"account"`
	Region   string            `yaml:"region"`
	Count    int               `yaml:"count"`
	Name     string            `yaml:"name"` // name prefix; instances are <name>-<n>
	Platform string            `yaml:"platform"`
	Tags     map[string]string `yaml:"tags"`
	// Ping is the SSM agent status: Online (default), ConnectionLost, Inactive.
	Ping string `yaml:"ping"`
	// Behavior of an Install: succeed (default), fail, hang, offline (never
	// delivered), reboot (reboots mid-run, then succeeds), slow (3x duration).
	Behavior string `yaml:"behavior"`
	// Missing is how many approved patches are missing before patching.
	Missing int `yaml:"missing"`
	// Findings are Amazon Inspector package vulnerabilities on each instance.
	Findings []FindingSpec `yaml:"findings"`
	// Coverage is Inspector's scan status reason: SUCCESSFUL (default),
	// STALE_INVENTORY, PENDING_INITIAL_SCAN, UNMANAGED_EC2_INSTANCE. Only
	// SUCCESSFUL instances are rescanned after patching.
	Coverage string `yaml:"coverage"`
	// ScanDelay is how long after a patch Inspector rescans (default 10m).
	ScanDelay time.Duration `yaml:"scanDelay"`
	// StillMissing and FailedAfter are patch counts a successful Install
	// leaves behind (an invocation can succeed while patches did not apply).
	StillMissing int `yaml:"stillMissing"`
	FailedAfter  int `yaml:"failedAfter"`
	// NoRebootHappens: the instance never reboots, even under
	// RebootIfNeeded, so installed patches stay pending a reboot.
	NoRebootHappens bool `yaml:"noRebootHappens"`
	// SnapshotFails: EBS snapshots of these instances end in state error.
	// PreInstallHookFails: AWS-RunPatchBaselineWithHooks fails in its
	// pre-install hook here (nothing is installed).
	SnapshotFails       bool `yaml:"snapshotFails"`
	PreInstallHookFails bool `yaml:"preInstallHookFails"`
}

// FindingSpec is one CVE on one package.
type FindingSpec struct {
	CVE      string `yaml:"cve"`
	Severity string `yaml:"severity"` // CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL, UNTRIAGED
	Package  string `yaml:"package"`
	// Fix is Inspector's fixAvailable: YES (default), PARTIAL or NO.
	Fix string `yaml:"fix"`
	// Unpatched keeps the finding ACTIVE after patching even with a fix
	// available (the baseline does not approve the fix).
	Unpatched bool `yaml:"unpatched"`
	// New findings only appear at the first rescan after a patch.
	New bool `yaml:"new"`
}

// LoadScenario reads a scenario file.
func LoadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading scenario: %w", err)
	}
	var sc Scenario
	dec := yaml.NewDecoder(bytesReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&sc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &sc, sc.validate()
}

func (sc *Scenario) validate() error {
	if len(sc.Accounts) == 0 {
		return fmt.Errorf("scenario: accounts is empty")
	}
	for i, g := range sc.Groups {
		if g.Count < 0 || g.Region == "" {
			return fmt.Errorf("scenario: group %d needs a region and a count >= 0", i)
		}
		switch g.Behavior {
		case "", "succeed", "fail", "hang", "offline", "reboot", "slow":
		default:
			return fmt.Errorf("scenario: group %d: unknown behavior %q", i, g.Behavior)
		}
	}
	if sc.Realism != nil {
		r := *sc.Realism
		r.fill()
		if err := r.validate(); err != nil {
			return err
		}
	}
	if err := sc.validateStorage(); err != nil {
		return err
	}
	return sc.validateAlarms()
}

// DemoOptions shape the built-in demo scenario.
type DemoOptions struct {
	FailStaging bool // one staging instance of the web fleet fails to patch
	// FailHealth: the web fleet's alarm web-5xx (111122223333, us-east-1)
	// enters ALARM an hour in, while staging patches or soaks.
	FailHealth bool
}

// DemoScenario is a few hundred instances over two accounts and two
// regions, matching the example policies in policies/.
func DemoScenario(o DemoOptions) *Scenario {
	sc := &Scenario{Accounts: []string{"111122223333", "444455556666"}, PatchDuration: 20 * time.Minute}
	for _, acct := range sc.Accounts {
		for _, region := range []string{"us-east-1", "eu-west-1"} {
			sc.Groups = append(sc.Groups,
				Group{Account: acct, Region: region, Count: 8, Name: "web-stg", Platform: "Amazon Linux", Tags: map[string]string{"Environment": "staging", "App": "web"}, Missing: 6, Findings: webFindings},
				Group{Account: acct, Region: region, Count: 60, Name: "web-prd", Platform: "Amazon Linux", Tags: map[string]string{"Environment": "production", "App": "web"}, Missing: 6, Findings: webFindings},
				Group{Account: acct, Region: region, Count: 2, Name: "web-prd-lost", Platform: "Amazon Linux", Tags: map[string]string{"Environment": "production", "App": "web"}, Ping: "ConnectionLost"},
			)
		}
	}
	sc.Groups = append(sc.Groups,
		Group{Account: "111122223333", Region: "us-east-1", Count: 4, Name: "win-stg", Platform: "Microsoft Windows Server 2022", Tags: map[string]string{"Environment": "staging", "App": "windows"}, Missing: 3},
		Group{Account: "111122223333", Region: "us-east-1", Count: 30, Name: "win-prd", Platform: "Microsoft Windows Server 2022", Tags: map[string]string{"Environment": "production", "App": "windows"}, Missing: 3, Behavior: "reboot"},
		Group{Account: "111122223333", Region: "eu-west-1", Count: 4, Name: "ubu-stg", Platform: "Ubuntu", Tags: map[string]string{"Environment": "staging", "App": "ubuntu"}, Missing: 2},
		Group{Account: "111122223333", Region: "eu-west-1", Count: 40, Name: "ubu-prd", Platform: "Ubuntu", Tags: map[string]string{"Environment": "production", "App": "ubuntu"}, Missing: 2},
	)
	demoSafety(sc, o)
	if o.FailStaging {
		sc.Groups[0].Count--
		sc.Groups = append(sc.Groups, Group{Account: sc.Accounts[0], Region: "us-east-1", Count: 1, Name: "web-stg-broken", Platform: "Amazon Linux",
			Tags: map[string]string{"Environment": "staging", "App": "web"}, Missing: 6, Behavior: "fail", Findings: webFindings})
	}
	return sc
}

// webFindings are the demo web fleet's vulnerabilities: patching fixes the
// first three; the last has no fix and stays (reported, not blocking).
var webFindings = []FindingSpec{
	{CVE: "CVE-2024-6387", Severity: "CRITICAL", Package: "openssh-server"},
	{CVE: "CVE-2024-3094", Severity: "CRITICAL", Package: "xz-libs"},
	{CVE: "CVE-2023-4911", Severity: "HIGH", Package: "glibc"},
	{CVE: "CVE-2023-52425", Severity: "MEDIUM", Package: "expat", Fix: "NO"},
}
