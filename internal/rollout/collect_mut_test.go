package rollout

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/gate"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/progress"
	"github.com/patchgate/patchgate/internal/result"
)

// Tests of how a wave's outcomes are read (collect, listInvocations) and
// judged (judge) that mutation testing showed unchecked.

// Each instance's outcome comes from its own invocation: the name SSM
// reports is kept; at the execution deadline only the instances still
// running are timed out, the ones that finished keep their outcome; a
// failed hook is named as the reason.
func TestOutcomesFromInvocations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stg := map[string]string{"Environment": "staging"}
		sc := groups(awssim.Group{Count: 3, Name: "ok", Tags: stg}, awssim.Group{Count: 2, Name: "stuck", Tags: stg, Behavior: "hang"},
			awssim.Group{Count: 1, Name: "busy", Tags: stg, PreInstallHookFails: true})
		sc.Documents = []string{"Acme-Drain"}
		h := newHarness(t, sc)
		pol := strings.Replace(oneWavePolicy("100%", "10"), "install: {executionTimeout: 24h}", "install: {executionTimeout: 1h, hooks: {preInstall: Acme-Drain}}", 1)
		r := h.run(context.Background(), mustPolicy(t, pol))
		if r.Status != result.StatusFailed {
			t.Fatalf("%s: %s", r.Status, r.Summary)
		}
		byName := map[string]result.Outcome{}
		for _, in := range phaseOf(t, r, "111122223333", "us-east-1", "staging").Waves[0].Instances {
			prefix, _, _ := strings.Cut(in.Name, "-")
			if !strings.HasSuffix(in.Name, ".internal") {
				t.Errorf("%s: name %q, want SSM's (the simulator's end in .internal)", in.ID, in.Name)
			}
			switch prefix {
			case "ok":
				if in.Outcome != result.OutcomeSucceeded {
					t.Errorf("%s finished before the deadline: %s %q", in.Name, in.Outcome, in.Error)
				}
			case "stuck":
				if in.Outcome != result.OutcomeTimedOut || in.Error != "still running at patchgate's execution deadline (1h); cancelled" {
					t.Errorf("%s: %s %q, want timed out at the deadline", in.Name, in.Outcome, in.Error)
				}
			case "busy":
				if in.Outcome != result.OutcomeFailed || !strings.HasPrefix(in.Error, "pre-install hook Acme-Drain failed") {
					t.Errorf("%s: %s %q, want failed naming the hook", in.Name, in.Outcome, in.Error)
				}
			}
			byName[prefix] = in.Outcome
		}
		if len(byName) != 3 {
			t.Fatalf("instances %v", byName)
		}
	})
}

// failingInvocations answers every ListCommandInvocations with an error.
type failingInvocations struct{ Commands }

func (failingInvocations) ListCommandInvocations(context.Context, *ssm.ListCommandInvocationsInput, ...func(*ssm.Options)) (*ssm.ListCommandInvocationsOutput, error) {
	return nil, errors.New("invocations unavailable")
}

// An instance whose invocation cannot be read is inconclusive, never a
// success, and says why.
func TestUnreadableInvocationsAreInconclusive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, groups(awssim.Group{Count: 3, Name: "stg", Tags: map[string]string{"Environment": "staging"}}))
		wrapCommands(h, func(c Commands) Commands { return failingInvocations{c} })
		r := h.run(context.Background(), mustPolicy(t, oneWavePolicy("100%", "0")))
		if r.Status != result.StatusInconclusive {
			t.Fatalf("%s: %s", r.Status, r.Summary)
		}
		stg := phaseOf(t, r, "111122223333", "us-east-1", "staging")
		// The reason names exactly the instances without a final status.
		if len(stg.Reasons) == 0 || stg.Reasons[0].Code != "inconclusive-invocations" || len(stg.Reasons[0].Instances) != 3 {
			t.Errorf("reasons %+v", stg.Reasons)
		}
		w := stg.Waves[0]
		for _, in := range w.Instances {
			if in.Outcome != result.OutcomeInconclusive || !strings.HasPrefix(in.Error, "could not read command "+w.CommandID+"'s invocations: ") ||
				!strings.Contains(in.Error, "invocations unavailable") {
				t.Errorf("%s: %s %q", in.ID, in.Outcome, in.Error)
			}
		}
	})
}

// judge gives the gate SSM's error count or the failures listed, whichever
// is more (an undeliverable invocation fails its instance but is not in
// SSM's ErrorCount); the instances of an unknown send; those never sent;
// and the wave names its first command.
func TestJudge(t *testing.T) {
	inst := func(id string, o result.Outcome, why string) result.Instance {
		return result.Instance{ID: id, Outcome: o, Error: why}
	}
	for _, tc := range []struct {
		name                     string
		errors                   []int // SSM's ErrorCount per chunk
		unknown                  bool  // the second chunk's send is unknown
		instances                []result.Instance
		wantErrors, wantUnsent   int
		wantUnknown, wantInconcl int
		status                   result.Status
	}{
		{name: "listed failures SSM does not count", errors: []int{0, 0},
			instances:  []result.Instance{inst("a", result.OutcomeFailed, "Undeliverable"), inst("b", result.OutcomeSucceeded, "")},
			wantErrors: 1, status: result.StatusFailed},
		{name: "SSM's count when it is more", errors: []int{2, 1},
			instances:  []result.Instance{inst("a", result.OutcomeFailed, ""), inst("b", result.OutcomeSucceeded, "")},
			wantErrors: 3, status: result.StatusFailed},
		{name: "unknown and unsent", errors: []int{0, 0}, unknown: true,
			instances: []result.Instance{inst("a", result.OutcomeSucceeded, ""), inst("c", result.OutcomeInconclusive, "maybe"),
				inst("d", result.OutcomeCancelled, "not sent: stopped"), inst("e", result.OutcomeCancelled, "run cancelled while command x was in flight")},
			wantUnsent: 1, wantUnknown: 1, wantInconcl: 1, status: result.StatusInconclusive},
		{name: "all succeeded", errors: []int{0, 0},
			instances: []result.Instance{inst("a", result.OutcomeSucceeded, ""), inst("b", result.OutcomeSucceeded, "")}, status: result.StatusPassed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &waveRun{st: &policy.Stage{SuccessThreshold: policy.Percent{Value: 50, IsPercent: true}},
				gw: gate.Wave{Index: 1, MaxErrors: "0", ErrorLimit: 0}}
			for i, e := range tc.errors {
				c := &chunkState{errors: e, ids: []string{string(rune('a' + 2*i)), string(rune('b' + 2*i))}, id: "cmd-" + string(rune('1'+i)),
					req: result.Command{Comment: "c" + string(rune('1'+i)), ConsoleURL: "url-" + string(rune('1'+i))}}
				if i == 1 && tc.unknown {
					c.unknown, c.ids = "maybe", []string{"c"}
				}
				r.chunks = append(r.chunks, c)
			}
			r.res.Instances = tc.instances
			r.judge()
			if r.gw.Errors != tc.wantErrors || r.gw.Unsent != tc.wantUnsent || len(r.gw.Unknown) != tc.wantUnknown {
				t.Errorf("gate errors %d unsent %d unknown %v, want %d %d %d", r.gw.Errors, r.gw.Unsent, r.gw.Unknown, tc.wantErrors, tc.wantUnsent, tc.wantUnknown)
			}
			if r.res.Counts.Targeted != len(tc.instances) || r.res.Counts.Inconclusive != tc.wantInconcl {
				t.Errorf("counts %+v", r.res.Counts)
			}
			if r.res.CommandID != "cmd-1" || r.res.Comment != "c1" || r.res.ConsoleURL != "url-1" {
				t.Errorf("the wave names %s %q %s, want the first command", r.res.CommandID, r.res.Comment, r.res.ConsoleURL)
			}
			if r.res.Status != tc.status {
				t.Errorf("status %s, want %s", r.res.Status, tc.status)
			}
		})
	}
}

// renamingInvocations gives every invocation the name SSM reports as name
// ("" for none).
type renamingInvocations struct {
	Commands
	name string
}

func (r renamingInvocations) ListCommandInvocations(ctx context.Context, in *ssm.ListCommandInvocationsInput, opts ...func(*ssm.Options)) (*ssm.ListCommandInvocationsOutput, error) {
	out, err := r.Commands.ListCommandInvocations(ctx, in, opts...)
	if out != nil {
		for i := range out.CommandInvocations {
			out.CommandInvocations[i].InstanceName = aws.String(r.name)
		}
	}
	return out, err
}

// An instance is named as its invocation names it, and by the inventory
// when the invocation has no name.
func TestInstanceNames(t *testing.T) {
	for _, tc := range []struct{ invocation, want string }{{"web-from-ssm", "web-from-ssm"}, {"", "stg-"}} {
		t.Run(tc.want, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, groups(awssim.Group{Count: 2, Name: "stg", Tags: map[string]string{"Environment": "staging"}}))
				wrapCommands(h, func(c Commands) Commands { return renamingInvocations{c, tc.invocation} })
				r := h.run(context.Background(), mustPolicy(t, oneWavePolicy("100%", "0")))
				for _, in := range phaseOf(t, r, "111122223333", "us-east-1", "staging").Waves[0].Instances {
					if !strings.HasPrefix(in.Name, tc.want) {
						t.Errorf("%s named %q, want %q...", in.ID, in.Name, tc.want)
					}
				}
			})
		})
	}
}

// A wave whose every instance's backup failed sends nothing: its instances
// are held back unpatched, counted, and the phase fails.
func TestWaveWithEveryBackupFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, groups(awssim.Group{Count: 3, Name: "stg", Tags: map[string]string{"Environment": "staging"}, SnapshotFails: true}))
		pol := strings.Replace(oneWavePolicy("100%", "0"), "install: {executionTimeout: 24h}",
			"install: {executionTimeout: 24h, backup: {mode: snapshot, retainDays: 14, waitFor: completed}}", 1)
		r := h.run(context.Background(), mustPolicy(t, pol))
		stg := phaseOf(t, r, "111122223333", "us-east-1", "staging")
		if len(h.sim.Sends()) != 0 || stg.Status != result.StatusFailed || stg.Counts.Targeted != 3 || stg.Counts.Succeeded != 0 {
			t.Fatalf("%d sends, staging %s %+v", len(h.sim.Sends()), stg.Status, stg.Counts)
		}
		for _, in := range stg.Waves[0].Instances {
			if !strings.HasPrefix(in.Error, "not patched: its backup failed") {
				t.Errorf("%s: %q", in.ID, in.Error)
			}
		}
	})
}

// The pacer is timed on the first command that has successful
// invocations; commands whose finished invocations all failed or were
// never delivered are passed over, and the first is read once only. A
// timing read that fails is logged and leaves the pacer backing off; one
// that works says how long an invocation takes.
func TestMeasureTypicalPicksSucceededInvocations(t *testing.T) {
	cmd := func(id string, completed, errs, dto int32) *chunkState {
		return &chunkState{id: id, last: ssmtypes.Command{CompletedCount: completed, ErrorCount: errs, DeliveryTimedOutCount: dto}}
	}
	start := mutStart
	took := &ssm.ListCommandInvocationsOutput{CommandInvocations: []ssmtypes.CommandInvocation{{Status: ssmtypes.CommandInvocationStatusSuccess,
		CommandPlugins: []ssmtypes.CommandPlugin{{ResponseStartDateTime: aws.Time(start), ResponseFinishDateTime: aws.Time(start.Add(2 * time.Minute))}}}}}
	for _, tc := range []struct {
		name    string
		chunks  []*chunkState
		answer  *ssm.ListCommandInvocationsOutput
		fail    bool
		read    string // the command whose invocations are read; "" none
		typical time.Duration
		logged  string
	}{
		{"none finished", []*chunkState{cmd("a", 0, 0, 0)}, nil, false, "", 0, ""},
		{"all failed", []*chunkState{cmd("a", 50, 50, 0)}, nil, false, "", 0, ""},
		{"failed and undelivered", []*chunkState{cmd("a", 50, 30, 20), cmd("b", 2, 0, 0)}, took, false, "b", 2 * time.Minute, "an invocation takes about 2m0s"},
		{"one success", []*chunkState{cmd("a", 50, 49, 0), cmd("b", 2, 0, 0)}, took, false, "a", 2 * time.Minute, "an invocation takes about 2m0s"},
		{"nothing timed", []*chunkState{cmd("a", 2, 0, 0)}, &ssm.ListCommandInvocationsOutput{}, false, "a", 0, ""},
		{"unreadable", []*chunkState{cmd("a", 2, 0, 0)}, nil, true, "a", 0, "could not time the first invocations"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := newScripted(nil)
			var read []string
			f.invs = func(in *ssm.ListCommandInvocationsInput) (*ssm.ListCommandInvocationsOutput, error) {
				read = append(read, aws.ToString(in.CommandId))
				if tc.fail {
					return nil, errListing
				}
				if tc.answer == nil {
					return &ssm.ListCommandInvocationsOutput{}, nil
				}
				return tc.answer, nil
			}
			tg, _ := intentTarget(func(int) error { return nil }, false)
			var logs strings.Builder
			tg.log = slog.New(slog.NewTextHandler(&logs, nil))
			tg.c.Commands = f
			d, timed := tg.measureTypical(context.Background(), tc.chunks)
			if strings.Join(read, ",") != tc.read || timed != (tc.read != "") || d != tc.typical {
				t.Errorf("read %v (timed %v, %s), want %q (%s)", read, timed, d, tc.read, tc.typical)
			}
			for _, msg := range []string{"an invocation takes about", "could not time the first invocations"} {
				if got, want := strings.Contains(logs.String(), msg), strings.HasPrefix(tc.logged, msg); got != want {
					t.Errorf("logged %q: %v, want %v: %s", msg, got, want, logs.String())
				}
			}
		})
	}
}

// droppingInvocations leaves one instance out of every invocation listing.
type droppingInvocations struct {
	Commands
	instance string
}

func (d droppingInvocations) ListCommandInvocations(ctx context.Context, in *ssm.ListCommandInvocationsInput, opts ...func(*ssm.Options)) (*ssm.ListCommandInvocationsOutput, error) {
	out, err := d.Commands.ListCommandInvocations(ctx, in, opts...)
	if out != nil && in.CommandId != nil {
		kept := out.CommandInvocations[:0]
		for _, inv := range out.CommandInvocations {
			if aws.ToString(inv.InstanceId) != d.instance {
				kept = append(kept, inv)
			}
		}
		out.CommandInvocations = kept
	}
	return out, err
}

// An instance SSM reports no invocation for is inconclusive; a later
// wave's progress tallies count it with the failures.
func TestInconclusiveCountsAsNotSucceededInLaterTallies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, groups(awssim.Group{Count: 8, Name: "stg", Tags: map[string]string{"Environment": "staging"}}))
		wrapCommands(h, func(c Commands) Commands { return droppingInvocations{c, "i-00000000000000001"} })
		rec := newRecorder()
		h.opt.Progress = rec
		pol := strings.Replace(oneWavePolicy("100%", "10"), "      verify:", "      successThreshold: \"50%\"\n      waves: [\"50%\", \"100%\"]\n      verify:", 1)
		r := h.run(context.Background(), mustPolicy(t, pol))
		if stg := phaseOf(t, r, "111122223333", "us-east-1", "staging"); len(stg.Waves) != 2 || stg.Counts.Inconclusive != 1 {
			t.Fatalf("staging %s %+v, %d waves; want both waves sent, one instance inconclusive", stg.Status, stg.Counts, len(stg.Waves))
		}
		k := progress.Key{Policy: "web", Phase: "staging", Account: "111122223333", Region: "us-east-1"}
		if got := rec.polled[k]; got != [3]int{7, 1, 0} {
			t.Errorf("last tallies %v, want 7 succeeded, 1 not (inconclusive in wave 1)", got)
		}
	})
}
