package verify

// Pure-function tests of the verification rules, written from the
// survivors of mutation testing (make mutate; docs/testing.md). They need
// no simulator and no clock: each pins one boundary a verdict rests on.

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	insptypes "github.com/aws/aws-sdk-go-v2/service/inspector2/types"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/patchgate/patchgate/internal/result"
)

func TestAtLeast(t *testing.T) {
	for _, tc := range []struct {
		sev, thresh string
		want        bool
	}{
		{"HIGH", "HIGH", true}, // at the threshold counts
		{"CRITICAL", "HIGH", true},
		{"MEDIUM", "HIGH", false},
		{"UNTRIAGED", "INFORMATIONAL", false},
		{"INFORMATIONAL", "UNTRIAGED", true},
		{"LOW", "CRITICAL", false},
		{"SOMETHING_NEW", "CRITICAL", true}, // unknown: serious, never ignored
		{"", "LOW", true},
	} {
		if got := AtLeast(tc.sev, tc.thresh); got != tc.want {
			t.Errorf("AtLeast(%q, %q) = %v, want %v", tc.sev, tc.thresh, got, tc.want)
		}
	}
}

func instanceIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("i-%03d", i)
	}
	return out
}

// TestBatches: Inspector takes at most 10 entries in one filter; every id
// is listed once.
func TestBatches(t *testing.T) {
	for _, tc := range []struct{ n, batches, last int }{{0, 0, 0}, {1, 1, 1}, {10, 1, 10}, {11, 2, 1}, {20, 2, 10}, {25, 3, 5}} {
		in := instanceIDs(tc.n)
		got := batches(in)
		if len(got) != tc.batches {
			t.Fatalf("%d ids: %d batches, want %d", tc.n, len(got), tc.batches)
		}
		var all []string
		for _, b := range got {
			if len(b) > filterBatch || len(b) == 0 {
				t.Fatalf("%d ids: a batch of %d", tc.n, len(b))
			}
			all = append(all, b...)
		}
		if !slices.Equal(all, in) {
			t.Fatalf("%d ids: batches %v", tc.n, got)
		}
		if tc.batches > 0 && len(got[len(got)-1]) != tc.last {
			t.Fatalf("%d ids: last batch %d, want %d", tc.n, len(got[len(got)-1]), tc.last)
		}
	}
}

// TestScope: up to 10 ids are listed by id; more, with tags, by one tag
// (the preferred one if the phase has it, else the first by name) and cut
// back to the phase's ids.
func TestScope(t *testing.T) {
	tags := map[string]string{"b": "2", "a": "1", "Patch": "web"}
	if sc := newScope(instanceIDs(10), tags, "Patch"); sc.byTag() || len(sc.ids) != 10 || !sc.keep("i-anything") {
		t.Fatalf("10 ids: %+v", sc)
	}
	if sc := newScope(instanceIDs(11), nil, "Patch"); sc.byTag() || !sc.keep("i-anything") {
		t.Fatalf("no tags: %+v", sc)
	}
	sc := newScope(instanceIDs(11), tags, "Patch")
	if sc.tag != [2]string{"Patch", "web"} || !sc.keep("i-010") || sc.keep("i-011") {
		t.Fatalf("11 ids by the preferred tag: %+v", sc)
	}
	sc = newScope(instanceIDs(11), tags, "Missing")
	if sc.tag != [2]string{"Patch", "web"} {
		// "Patch" sorts before "a" and "b" (upper case first).
		t.Fatalf("11 ids, no preferred tag: %+v", sc.tag)
	}
	sc = newScope(instanceIDs(11), map[string]string{"b": "2", "a": "1"}, "")
	if sc.tag != [2]string{"a", "1"} {
		t.Fatalf("first tag by name: %+v", sc.tag)
	}
	sub := sc.sub([]string{"i-003"})
	if !sub.byTag() || !sub.keep("i-003") || sub.keep("i-004") || !slices.Equal(sub.ids, []string{"i-003"}) {
		t.Fatalf("sub by tag: %+v", sub)
	}
	byID := newScope(instanceIDs(3), nil, "").sub([]string{"i-001"})
	if byID.byTag() || !slices.Equal(byID.ids, []string{"i-001"}) {
		t.Fatalf("sub by id: %+v", byID)
	}
}

func TestRescanned(t *testing.T) {
	ended := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	active := &insptypes.ScanStatus{StatusCode: insptypes.ScanStatusCodeActive}
	for _, tc := range []struct {
		name string
		c    insptypes.CoveredResource
		want bool
	}{
		{"scanned after the patch", insptypes.CoveredResource{ScanStatus: active, LastScannedAt: aws.Time(ended.Add(time.Second))}, true},
		{"scanned at the patch's end is not after it", insptypes.CoveredResource{ScanStatus: active, LastScannedAt: aws.Time(ended)}, false},
		{"scanned before", insptypes.CoveredResource{ScanStatus: active, LastScannedAt: aws.Time(ended.Add(-time.Minute))}, false},
		{"never scanned", insptypes.CoveredResource{ScanStatus: active}, false},
		{"no scan status", insptypes.CoveredResource{LastScannedAt: aws.Time(ended.Add(time.Hour))}, false},
		{"scanning inactive", insptypes.CoveredResource{ScanStatus: &insptypes.ScanStatus{StatusCode: insptypes.ScanStatusCodeInactive}, LastScannedAt: aws.Time(ended.Add(time.Hour))}, false},
	} {
		if got := rescanned(tc.c, ended); got != tc.want {
			t.Errorf("%s: rescanned = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestNonCompliant(t *testing.T) {
	run := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	ok := patchState{operation: ssmtypes.PatchOperationTypeInstall, ended: run.Add(time.Hour)}
	with := func(mod func(*patchState)) patchState {
		st := ok
		mod(&st)
		return st
	}
	for _, tc := range []struct {
		name        string
		st          patchState
		allowReboot bool
		want        string
	}{
		{"compliant", ok, false, ""},
		{"a Scan", with(func(s *patchState) { s.operation = ssmtypes.PatchOperationTypeScan }), false, "the last patch operation was Scan, not Install"},
		{"no end", with(func(s *patchState) { s.ended = time.Time{} }), false, "the last Install ended before this run started"},
		{"ended before the run", with(func(s *patchState) { s.ended = run.Add(-time.Second) }), false, "the last Install ended before this run started"},
		{"ended as the run started", with(func(s *patchState) { s.ended = run }), false, ""},
		{"one failed", with(func(s *patchState) { s.counts.Failed = 1 }), false, "1 patches failed to install"},
		{"failed before missing", with(func(s *patchState) { s.counts.Failed, s.counts.Missing = 2, 3 }), false, "2 patches failed to install"},
		{"one missing", with(func(s *patchState) { s.counts.Missing = 1 }), false, "1 approved patches are still missing"},
		{"one pending reboot", with(func(s *patchState) { s.counts.InstalledPendingReboot = 1 }), false, "1 patches are installed but wait for a reboot"},
		{"pending reboot allowed", with(func(s *patchState) { s.counts.InstalledPendingReboot = 1 }), true, ""},
		{"missing even when reboots are allowed", with(func(s *patchState) { s.counts.Missing = 1 }), true, "1 approved patches are still missing"},
		{"installed and other counts are fine", with(func(s *patchState) { s.counts.Installed, s.counts.InstalledOther, s.counts.NotApplicable = 5, 2, 9 }), false, ""},
	} {
		if got := nonCompliant(tc.st, run, tc.allowReboot); got != tc.want {
			t.Errorf("%s: nonCompliant = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestCompactCounts(t *testing.T) {
	end := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	st := compact(ssmtypes.InstancePatchState{Operation: ssmtypes.PatchOperationTypeInstall, OperationEndTime: aws.Time(end),
		InstalledCount: 1, InstalledOtherCount: 2, InstalledPendingRebootCount: aws.Int32(3), InstalledRejectedCount: aws.Int32(4),
		MissingCount: 5, FailedCount: 6, NotApplicableCount: 7})
	want := result.PatchCounts{Installed: 1, InstalledOther: 2, InstalledPendingReboot: 3, InstalledRejected: 4, Missing: 5, Failed: 6, NotApplicable: 7}
	if st.counts != want || !st.ended.Equal(end) || st.operation != ssmtypes.PatchOperationTypeInstall {
		t.Fatalf("compact = %+v, want counts %+v", st, want)
	}
	// Counts add up (a phase's totals are sums of its instances').
	addCounts(&st.counts, ssmtypes.InstancePatchState{InstalledCount: 10, InstalledOtherCount: 10, InstalledPendingRebootCount: aws.Int32(10),
		InstalledRejectedCount: aws.Int32(10), MissingCount: 10, FailedCount: 10, NotApplicableCount: 10})
	want = result.PatchCounts{Installed: 11, InstalledOther: 12, InstalledPendingReboot: 13, InstalledRejected: 14, Missing: 15, Failed: 16, NotApplicable: 17}
	if st.counts != want {
		t.Fatalf("added = %+v, want %+v", st.counts, want)
	}
	if z := compact(ssmtypes.InstancePatchState{}); !z.ended.IsZero() {
		t.Fatalf("no end time must stay zero, got %v", z.ended)
	}
}

func TestCompliant(t *testing.T) {
	for _, tc := range []struct {
		st   ssmtypes.InstancePatchState
		want bool
	}{
		{ssmtypes.InstancePatchState{InstalledCount: 4}, true},
		{ssmtypes.InstancePatchState{MissingCount: 1}, false},
		{ssmtypes.InstancePatchState{FailedCount: 1}, false},
		{ssmtypes.InstancePatchState{InstalledPendingRebootCount: aws.Int32(1)}, false},
		{ssmtypes.InstancePatchState{InstalledPendingRebootCount: aws.Int32(0)}, true},
	} {
		if got := Compliant(tc.st); got != tc.want {
			t.Errorf("Compliant(%+v) = %v, want %v", tc.st, got, tc.want)
		}
	}
}

// TestSnapshotTaken: without a snapshot, every finding is older than the
// phase (never "fixed" or "new" without evidence).
func TestSnapshotTaken(t *testing.T) {
	at := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	if got := (&Snapshot{Taken: at}).taken(); !got.Equal(at) {
		t.Fatalf("taken = %v", got)
	}
	for _, s := range []*Snapshot{nil, {}} {
		if got := s.taken(); got.Year() != 9999 {
			t.Fatalf("%+v: taken = %v, want the far future", s, got)
		}
	}
}

func TestInstancesAndCVEsOf(t *testing.T) {
	fs := []result.Finding{{InstanceID: "i-2", CVE: "CVE-2"}, {InstanceID: "i-1", CVE: "CVE-1"}, {InstanceID: "i-2", CVE: "CVE-1"}}
	if got := instancesOf(fs); !slices.Equal(got, []string{"i-2", "i-1"}) {
		t.Fatalf("instancesOf = %v (once each, in order)", got)
	}
	if got := cvesOf(fs); !slices.Equal(got, []string{"CVE-1", "CVE-2"}) {
		t.Fatalf("cvesOf = %v (once each, sorted)", got)
	}
}
