// Package rollout runs patch policies: for each policy, account and region,
// it patches the phases in order (staging before production), wave by wave,
// with AWS-RunPatchBaseline, and halts a policy at the first gate that does
// not pass. It produces a result.Run that says exactly what happened,
// including on cancellation.
package rollout

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/google/uuid"

	"github.com/patchgate/patchgate/internal/backup"
	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/discover"
	"github.com/patchgate/patchgate/internal/gate"
	"github.com/patchgate/patchgate/internal/health"
	"github.com/patchgate/patchgate/internal/hooks"
	"github.com/patchgate/patchgate/internal/lock"
	"github.com/patchgate/patchgate/internal/notify"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/progress"
	"github.com/patchgate/patchgate/internal/promote"
	"github.com/patchgate/patchgate/internal/result"
	"github.com/patchgate/patchgate/internal/securityhub"
	"github.com/patchgate/patchgate/internal/version"
)

// Clients are the AWS APIs of one account and region.
type Clients struct {
	AccountID string
	Commands  Commands
	Inventory Inventory
	Calendars Calendars
	Params    lock.ParameterStore
	// Patches reads an instance's installed patches, for the promotion
	// record's patch set.
	Patches promote.PatchesAPI
	// Backups, Health and SecurityHub serve install.backup, verify.health
	// and reporting.securityHub; nil where the run cannot reach them.
	Backups     *backup.Backups
	Health      *health.Reader
	SecurityHub *securityhub.Exporter
	// Verifier decides the evidence part of each gate; nil means the gate
	// rests on invocation outcomes alone (and the report says so).
	Verifier Verifier
}

// Connect returns the clients for an account (empty: the credentials' own
// account) and region, assuming roleARN when it is set.
type Connect func(ctx context.Context, accountID, roleARN, region string) (*Clients, error)

// Scope names where a phase runs, for the verifier.
type Scope struct {
	Policy     *policy.Policy
	Phase      *policy.Phase
	Stage      *policy.Stage // the phase compiled: its settings as the gate reads them
	AccountID  string
	Region     string
	RunID      string
	RunStarted time.Time
	// Slack is how much later than now the phase's gate here may end at
	// no cost, because another account-region is expected to end the
	// phase later (half that lead); nil: none.
	Slack func() time.Duration
	// LastChance is the chance that this account-region ends the phase
	// last (phaseShare.lastChance); nil: 1.
	LastChance func() float64
}

// Verifier gathers the evidence a phase's gate is decided on. rollout calls
// Before once the phase's instances are known and before anything is sent,
// and After once every wave of the phase has ended.
type Verifier interface {
	Before(ctx context.Context, s Scope, instanceIDs []string) (any, error)
	After(ctx context.Context, s Scope, before any, instances []result.Instance) (*result.Verification, error)
}

// Options configure a run.
type Options struct {
	RunID       string
	RunURL      string
	DryRun      bool
	ForceWindow bool // patch outside schedule, freezes and closed change calendars; recorded in the result
	// Due restricts the run to policies whose schedule is open now; policies
	// named explicitly are always considered (and refused outside their window).
	Explicit bool
	Parallel int // account x region targets at once; default 16
	Connect  Connect
	Clock    clock.Clock
	Logger   *slog.Logger
	// PollMin and PollMax bound the time between polls of a wave (clock
	// time). Polls follow the rounds SSM runs a command in once the time
	// an invocation takes is measured, and back off geometrically until
	// then; each poll is a ListCommands page per 50 commands.
	PollMin, PollMax time.Duration
	// PollScale spaces some of the looks the pacer chooses PollScale
	// times further apart: the least share of a wave's age between looks,
	// the tail watch (a share of the age, still at most PollMax), and the
	// inspection density (a look is worth PollScale² times the lag). Looks
	// at a predicted event (first completions, a chunk's end, a projected
	// decline), the growth at an unknown pace, PollMin, PollMax and the
	// hourly look for progress (a net under MaxErrors) stay as they are.
	// Above 1: fewer ListCommands, each wave's end seen later; below 1 the
	// reverse. 0: 1; bounded to [1/16, 64]. The bench measures the trade
	// (BENCHMARKS.md, calls against overhead).
	PollScale float64
	// CancelTimeout bounds the best-effort CancelCommand sweep after a cancellation.
	CancelTimeout time.Duration
	// LockTTL is recorded in the lock as its expiry; default 12h.
	LockTTL time.Duration
	// OnProgress, when set, receives the result after each wave so that a
	// caller can write partial results.
	OnProgress func(*result.Run)
	// ReconcileWindow is how long an ambiguous SendCommand is looked for
	// before it may be sent again (clock time); default DefaultReconcileWindow.
	ReconcileWindow time.Duration
	// SendRate and SendBurst bound SendCommands per account and region;
	// default DefaultSendRate and DefaultSendBurst, a negative rate none.
	SendRate  float64
	SendBurst int
	// Progress, when set, hears each phase start, each command sent, each
	// poll's tallies and each phase's end, for live progress lines.
	Progress Progress
	// Store connects a policy's promotion store (spec.rings.store); Commit
	// is the policy repository's commit, kept in each record.
	Store  StoreConnect
	Commit string
	// Notifier reaches a policy's reporting.sns topic.
	Notifier NotifierConnect
}

// PollScale's bounds: far beyond them a share of a wave's age overflows a
// Duration, or every look is PollMin or PollMax anyway.
const (
	minPollScale = 1.0 / 16
	maxPollScale = 64.0
)

// ProgressEvery is how often, at least, a running wave is looked at for
// progress under these options (their PollMax, or its default), whatever
// the pacer predicts.
func (o Options) ProgressEvery() time.Duration {
	o.defaults()
	return quietFactor * o.PollMax
}

func (o *Options) defaults() {
	if o.Parallel <= 0 {
		o.Parallel = 16
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.PollMin <= 0 {
		o.PollMin = 5 * time.Second
	}
	if o.PollMax <= 0 {
		o.PollMax = 15 * time.Minute
	}
	if o.PollScale <= 0 || math.IsNaN(o.PollScale) {
		o.PollScale = 1
	}
	o.PollScale = min(max(o.PollScale, minPollScale), maxPollScale)
	if o.CancelTimeout <= 0 {
		o.CancelTimeout = 3 * time.Second
	}
	if o.Progress == nil {
		o.Progress = noProgress{}
	}
	if o.LockTTL <= 0 {
		o.LockTTL = 12 * time.Hour
	}
}

// Progress hears what a run does as it does it.
type Progress interface {
	PhaseStarted(k progress.Key, instances, waves int)
	Sent(k progress.Key, n int)
	Polled(k progress.Key, succeeded, failed, inFlight int)
	PhaseEnded(k progress.Key, status string, heldBack int)
}

// noProgress is the Progress of a run nobody watches.
type noProgress struct{}

func (noProgress) PhaseStarted(progress.Key, int, int)  {}
func (noProgress) Sent(progress.Key, int)               {}
func (noProgress) Polled(progress.Key, int, int, int)   {}
func (noProgress) PhaseEnded(progress.Key, string, int) {}

// Engine runs policies.
type Engine struct {
	opt        Options
	mu         sync.Mutex // guards run while targets report progress
	run        *result.Run
	snapshotID string
	sendLimits sendLimits // SendCommand rate per account and region
}

// New returns an engine.
func New(o Options) *Engine {
	o.defaults()
	return &Engine{opt: o}
}

// Run patches the policies and returns the result. It never returns a nil
// result: errors are recorded in it, with the status that says what they mean.
func (e *Engine) Run(ctx context.Context, policies []*policy.Policy) *result.Run {
	now := e.opt.Clock.Now()
	e.run = &result.Run{
		SchemaVersion: result.SchemaVersion, RunID: e.opt.RunID, RunURL: e.opt.RunURL, Version: version.String(),
		DryRun: e.opt.DryRun, ForcedWindow: e.opt.ForceWindow, StartedAt: now, Status: result.StatusRunning,
	}
	e.snapshotID = uuid.NewString()
	e.run.SnapshotID = e.snapshotID
	type job struct {
		pi   int
		pol  *policy.Policy
		plan *policy.Rollout
	}
	var jobs []job
	for _, p := range policies {
		rp := result.Policy{Name: p.Metadata.Name, File: p.Source.File, Description: p.Metadata.Description, Owners: p.Metadata.Owners}
		if ok, why := windowOpen(p, now); !ok && !e.opt.ForceWindow {
			rp.Reason = why
			if e.opt.Explicit {
				rp.Status = result.StatusRefused
				rp.Reason = why + "; pass --force-window to patch anyway (the report records it)"
			} else {
				rp.Status = result.StatusSkipped
			}
			e.run.Policies = append(e.run.Policies, rp)
			continue
		}
		plan, err := policy.Compile(p)
		if err != nil {
			rp.Status, rp.Reason = result.StatusError, err.Error()
			e.run.Policies = append(e.run.Policies, rp)
			continue
		}
		if e.opt.DryRun {
			rp.Plan = plan
		}
		jobs = append(jobs, job{pi: len(e.run.Policies), pol: p, plan: plan})
		e.run.Policies = append(e.run.Policies, rp)
	}

	// Policies are independent of one another; the account-region targets
	// of all of them share one bound.
	sem := make(chan struct{}, e.opt.Parallel)
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.runPolicy(ctx, j.pi, j.pol, j.plan, sem)
		}()
	}
	wg.Wait()

	e.finish(ctx)
	return e.run
}

func (e *Engine) finish(ctx context.Context) {
	r := e.run
	r.EndedAt = e.opt.Clock.Now()
	var all []result.Status
	for i := range r.Policies {
		p := &r.Policies[i]
		if len(p.Targets) > 0 {
			var ts []result.Status
			for _, t := range p.Targets {
				ts = append(ts, t.Status)
			}
			p.Status = result.Worst(ts...)
			p.Reason = firstReason(p.Targets, p.Status)
		}
		all = append(all, p.Status)
	}
	r.Status = result.Worst(all...)
	if ctx.Err() != nil && r.Status.Severity() < result.StatusCancelled.Severity() {
		r.Status = result.StatusCancelled
	}
	r.Summary = summarize(r)
}

func firstReason(ts []result.Target, s result.Status) string {
	for _, t := range ts {
		if t.Status == s && t.Reason != "" {
			return fmt.Sprintf("%s/%s: %s", t.AccountID, t.Region, t.Reason)
		}
	}
	return ""
}

func summarize(r *result.Run) string {
	counts := map[result.Status]int{}
	for _, p := range r.Policies {
		counts[p.Status]++
	}
	var parts []string
	for _, s := range []result.Status{result.StatusPassed, result.StatusWaiting, result.StatusFailed, result.StatusInconclusive, result.StatusCancelled, result.StatusRefused, result.StatusError, result.StatusHalted, result.StatusDryRun, result.StatusSkipped} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	if len(parts) == 0 {
		return "no policies to run"
	}
	prefix := map[result.Status]string{
		result.StatusPassed:       "Every gate passed",
		result.StatusFailed:       "A gate failed; later phases were not patched",
		result.StatusInconclusive: "Evidence is missing for a gate; later phases were not patched",
		result.StatusCancelled:    "The run was cancelled; in-flight commands were cancelled",
		result.StatusRefused:      "A policy was refused before anything was sent",
		result.StatusError:        "patchgate could not complete the run",
		result.StatusDryRun:       "Dry run: nothing was sent",
		result.StatusSkipped:      "Nothing was due",
		result.StatusWaiting:      "A promoted phase is waiting for its source phase to become eligible; nothing is wrong",
	}[r.Status]
	if prefix == "" {
		prefix = string(r.Status)
	}
	return fmt.Sprintf("%s (policies: %s).", prefix, strings.Join(parts, ", "))
}

// progress hands a consistent copy of the run to OnProgress.
func (e *Engine) progress() {
	if e.opt.OnProgress == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.opt.OnProgress(e.run)
}

// target is the state of one policy in one account and region.
type target struct {
	e       *Engine
	pol     *policy.Policy
	plan    *policy.Rollout
	region  string
	c       *Clients
	res     *result.Target
	log     *slog.Logger
	started time.Time
	// sent maps Comment -> command found from an earlier attempt of this run.
	earlier map[string]ssmtypes.Command
	// inflight are command ids not yet finished, for the cancellation sweep.
	inflightMu sync.Mutex
	inflight   map[string]bool
	// typical is how long one invocation takes here, once measured; it
	// paces the polls of every later wave.
	typical time.Duration
	// seen are the completion times of its policy's invocations so far
	// (pace.go), shared by the policy's account-regions; peers counts
	// those still running the phase in flight.
	seen  *completions
	peers *phaseShare
	// intentPut and unsettled follow the send intent (intent.go).
	intentPut, unsettled bool
	// healthBase is the phase's alarm reading before it began (nil
	// without verify.health); held are instances of the next wave not
	// patched because their backup failed.
	healthBase *health.Reading
	held       []result.Instance
	// key names the phase in flight for Progress; done tallies its ended
	// waves.
	key                progress.Key
	doneOK, doneFailed int
	// override are AWS-RunPatchBaseline parameters a promoted phase adds
	// (InstallOverrideList or BaselineOverride); nil otherwise.
	override map[string][]string
}

// slot is one account-region target of a policy.
type slot struct {
	ti      int
	account policy.Account
	region  string
	t       *target
	res     *result.Target
	release func()
	phases  []int // the phases whose scope includes this account-region, in order
}

// policySlots are the account-regions of every phase of a policy, in the
// order the policy names them.
func policySlots(p *policy.Policy, plan *policy.Rollout, now time.Time) []*slot {
	var slots []*slot
	index := map[[2]string]*slot{}
	for i := range plan.Stages {
		st := &plan.Stages[i]
		accounts := st.Accounts
		if len(accounts) == 0 {
			accounts = []policy.Account{{}} // the credentials' own account
		}
		for _, a := range accounts {
			for _, r := range st.Regions {
				k := [2]string{a.ID, r}
				sl := index[k]
				if sl == nil {
					sl = &slot{ti: len(slots), account: a, region: r, res: &result.Target{AccountID: a.ID, Region: r, Status: result.StatusRunning, StartedAt: now}}
					index[k] = sl
					slots = append(slots, sl)
				}
				sl.phases = append(sl.phases, i)
			}
		}
	}
	return slots
}

// runPolicy patches one policy in all its account-regions. A phase is a
// barrier across them: the next phase starts anywhere only after this one
// passed everywhere it ran, so a staging account gates every production
// account (spec.rings.independentTargets opts out: each account-region
// then moves on its own). A target that cannot be set up (connection,
// calendar, lock) or a promotion store that cannot be used stops the whole
// policy before anything is sent.
func (e *Engine) runPolicy(ctx context.Context, pi int, p *policy.Policy, plan *policy.Rollout, sem chan struct{}) {
	slots := policySlots(p, plan, e.opt.Clock.Now())
	e.mu.Lock()
	e.run.Policies[pi].Targets = make([]result.Target, len(slots))
	for _, s := range slots {
		e.run.Policies[pi].Targets[s.ti] = *s.res
	}
	e.mu.Unlock()
	publish := func(s *slot) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.run.Policies[pi].Targets[s.ti] = *s.res
	}
	pr := &policyRun{e: e, p: p, plan: plan, sem: sem, publish: publish, seen: &completions{}}

	pr.each(slots, func(s *slot) { s.t, s.release = e.setupTarget(ctx, p, plan, s.account, s.region, s.res) })
	defer func() {
		pr.sweep(ctx, slots)
		var wg sync.WaitGroup
		for _, s := range slots {
			if s.release != nil {
				wg.Add(1)
				go func() { defer wg.Done(); s.release() }()
			}
		}
		wg.Wait()
		var ss []result.Status
		var lines []string
		for _, s := range slots {
			finishTarget(ctx, s, p)
			s.res.EndedAt = e.opt.Clock.Now()
			publish(s)
			ss = append(ss, s.res.Status)
			line := fmt.Sprintf("%s/%s: %s", s.res.AccountID, s.region, s.res.Status)
			if s.res.Reason != "" {
				line += " (" + s.res.Reason + ")"
			}
			lines = append(lines, line)
		}
		status := result.Worst(ss...)
		pr.notify(ctx, notify.Event{Kind: notify.RunEnd, Status: string(status),
			Summary: fmt.Sprintf("patchgate run %s of %s: %s\n%s", e.opt.RunID, p.Metadata.Name, status, strings.Join(lines, "\n"))})
	}()

	var notReady []string
	for _, s := range slots {
		if s.t == nil {
			notReady = append(notReady, fmt.Sprintf("%s/%s is %s (%s)", orSelf(s.res.AccountID), s.region, s.res.Status, s.res.Reason))
		}
	}
	if len(notReady) == 0 {
		if err := pr.openStore(ctx); err == nil {
			err = pr.decideAll(ctx)
			if err != nil {
				notReady = append(notReady, err.Error())
				for _, s := range slots {
					s.res.Status, s.res.Reason = result.StatusError, err.Error()
				}
			}
		} else {
			notReady = append(notReady, err.Error())
			for _, s := range slots {
				s.res.Status, s.res.Reason = result.StatusError, err.Error()
			}
		}
	}
	if len(notReady) > 0 {
		for _, s := range slots {
			if s.t != nil && s.res.Status == result.StatusRunning {
				s.res.Status = result.StatusHalted
				s.res.Reason = "not sent: " + strings.Join(notReady, "; ")
				for _, i := range s.phases {
					s.res.Phases = append(s.res.Phases, result.Phase{Name: p.Spec.Phases[i].Name, Status: result.StatusHalted,
						Reasons: []result.Reason{{Code: "halted", Message: "not sent: another account-region of the policy could not start: " + strings.Join(notReady, "; ")}}})
				}
			}
		}
		return
	}
	pr.sns = pr.notifier(ctx, slots)
	pr.notify(ctx, notify.Event{Kind: notify.RunStart, Summary: fmt.Sprintf("patchgate run %s is patching %s: phases %s in %d account-regions",
		e.opt.RunID, p.Metadata.Name, phaseNames(p), len(slots))})
	if plan.Rings != nil && plan.Rings.IndependentTargets {
		// The policy's explicit opt-out: each account-region on its own.
		var wg sync.WaitGroup
		for _, s := range slots {
			wg.Add(1)
			// Each account-region proves its own rings: its own run state.
			own := *pr
			go func() { defer wg.Done(); own.phases(ctx, []*slot{s}) }()
		}
		wg.Wait()
		return
	}
	pr.phases(ctx, slots)
}

// policyRun is one policy's run across its account-regions.
type policyRun struct {
	e       *Engine
	p       *policy.Policy
	plan    *policy.Rollout
	sem     chan struct{}
	publish func(*slot)
	store   *promote.Store   // nil without spec.rings.store
	sns     *notify.Notifier // nil without reporting.sns
	// decisions are the promoted phases' decisions, taken before anything
	// of this run is sent: a record this run writes is never its own
	// source.
	decisions map[int]promote.Decision
	proven    bool // an earlier phase patched instances and passed, somewhere
	// seen: the policy's completions, which pace every target's polls.
	seen *completions
}

// phaseShare is where the account-regions of a phase stand: the next
// phase waits for the last of them, so a look that comes late in one
// that is unlikely to be the last costs the run little, and in one that
// is surely ahead of another nothing (pacer.rarity, lead).
// What one account-region records at an instant of the clock, the others
// see from the next instant: the order in which they happen to run within
// one instant must not change what they do.
type phaseShare struct {
	mu sync.Mutex
	// order is the account-regions in peerKey order, in which they are
	// read, so that the arithmetic does not depend on the order in which
	// goroutines recorded.
	order []*target
	marks map[*target][]phaseMark // each account-region's, in time order
	ends  []waveEnd               // in time order
}

// phaseMark is how far one account-region is: left waves to run after
// the one it is at since at (-1 while it verifies, after its last); done
// once its phase ended. A zero at: it has not reached its first wave yet
// (its slot is still taken by another, or it is setting up).
type phaseMark struct {
	left int
	at   time.Time
	done bool
}

// waveEnd is one ended wave of the phase: how long it took, ended at at.
type waveEnd struct {
	at   time.Time
	took time.Duration
}

func newPhaseShare(ts []*target) *phaseShare {
	ps := &phaseShare{marks: map[*target][]phaseMark{}}
	for _, t := range ts {
		ps.add(t)
		ps.marks[t] = []phaseMark{{}}
	}
	return ps
}

// add puts t in its place in order.
func (ps *phaseShare) add(t *target) {
	i, _ := slices.BinarySearchFunc(ps.order, t, func(a, b *target) int { return strings.Compare(a.peerKey(), b.peerKey()) })
	ps.order = slices.Insert(ps.order, i, t)
}

// mark records that t is at a wave with left more to run since at (-1:
// verifying); done that its phase ended.
func (ps *phaseShare) mark(t *target, left int, at time.Time, done bool) {
	if ps == nil {
		return
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if _, ok := ps.marks[t]; !ok {
		ps.add(t)
	}
	ps.marks[t] = append(ps.marks[t], phaseMark{left: left, at: at, done: done})
}

// waveEnded records a wave of the phase that ended at at after took.
func (ps *phaseShare) waveEnded(at time.Time, took time.Duration) {
	if ps == nil {
		return
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	// In time order: the order goroutines recorded them at one instant
	// must not change the sum's rounding (waveTimes).
	e := waveEnd{at: at, took: took}
	i, _ := slices.BinarySearchFunc(ps.ends, e, func(a, b waveEnd) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.took, b.took)
	})
	ps.ends = slices.Insert(ps.ends, i, e)
}

// markAt is the last of marks recorded before now (own: at now too).
func markAt(marks []phaseMark, now time.Time, own bool) (phaseMark, bool) {
	for i := len(marks) - 1; i >= 0; i-- {
		if m := marks[i]; m.at.Before(now) || own && !m.at.After(now) {
			return m, true
		}
	}
	return phaseMark{}, false
}

// phaseView is t's standing in the share at now, copied under its lock:
// t's mark, those of the others still in the phase (in order), how many
// have not reached a wave yet, and the phase's wave times. alone: t is in
// no share, or has not reached a wave.
type phaseView struct {
	now          time.Time
	alone        bool
	me           phaseMark
	others       []phaseMark
	queued       int
	mean, spread time.Duration
}

func (ps *phaseShare) view(t *target, now time.Time) phaseView {
	if ps == nil {
		return phaseView{now: now, alone: true}
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	me, ok := markAt(ps.marks[t], now, true)
	if !ok || me.at.IsZero() {
		return phaseView{now: now, alone: true}
	}
	v := phaseView{now: now, me: me}
	v.mean, v.spread = ps.waveTimes(now)
	for _, o := range ps.order {
		if o == t {
			continue
		}
		switch m, ok := markAt(ps.marks[o], now, false); {
		case !ok || m.done:
		case m.at.IsZero():
			v.queued++
		default:
			v.others = append(v.others, m)
		}
	}
	return v
}

// lead is how much later than t the account-region furthest behind in
// the phase at now is surely expected to end it, 0 when t is furthest
// behind: a look at t that much later costs the run nothing. Each is
// expected to end its wave a mean wave after it began and then to run its
// remaining waves at the mean. Surely: another that is overdue is taken to
// end now, and t, if overdue, to run as long again as it is late (its
// straggler may end at any moment, or hours later); and what remains of
// the gap is less twice the spread of wave times (two waves' ends differ
// by about 1.4 spreads), since a wave of the other that ends early makes
// t the last. None while one has not reached a wave: it starts when one
// that runs ends.
func (ps *phaseShare) lead(t *target, now time.Time) time.Duration {
	return ps.view(t, now).lead()
}

func (v phaseView) lead() time.Duration {
	now := v.now
	if v.alone || v.mean == 0 || v.queued > 0 {
		return 0
	}
	mine := v.me.at.Add(v.mean)
	if mine.Before(now) {
		mine = now.Add(now.Sub(mine))
	}
	var lead time.Duration
	for _, m := range v.others {
		due := m.at.Add(v.mean)
		if due.Before(now) {
			due = now
		}
		gap := due.Sub(mine) + time.Duration(m.left-v.me.left)*v.mean
		lead = max(lead, gap-2*v.spread)
	}
	return lead
}

// lastChance is the chance that t is the last of the account-regions
// still in the phase at now to end it: only that one's looks decide when
// the next phase starts. Each is expected to end its wave a mean wave
// after it began (one overdue, as long again as it is late: a straggler
// nothing predicts may end at any moment or hours later, not now) and
// then to run the waves it has left beyond the furthest ahead at the
// mean, each wave spread as the phase's ended waves are (at least
// minSpread of the mean: a few ended waves understate it); the chance is
// that of a normal draw for t coming after everyone else's. Before any
// wave of the phase has ended, those with as many waves left are alike:
// one chance in as many. While one has not reached a wave, it starts when
// one that runs ends, so each that runs is alike.
func (ps *phaseShare) lastChance(t *target, now time.Time) float64 {
	return ps.view(t, now).lastChance()
}

func (v phaseView) lastChance() float64 {
	now := v.now
	if v.alone {
		return 1
	}
	running := 1 + len(v.others)
	if v.queued > 0 {
		return 1 / float64(running)
	}
	if v.mean == 0 {
		same := 1
		for _, m := range v.others {
			if m.left == v.me.left {
				same++
			}
		}
		return 1 / float64(same)
	}
	if len(v.others) == 0 {
		return 1
	}
	front := v.me.left
	for _, m := range v.others {
		front = min(front, m.left)
	}
	// In hours, as floats: a spread of a share of the mean is never 0.
	mean := v.mean.Hours()
	sd := max(v.spread.Hours(), minSpread*mean)
	end := func(m phaseMark) (mu, s float64) {
		rest := m.at.Add(v.mean).Sub(now).Hours()
		if rest < 0 {
			rest = -rest
		}
		behind := float64(m.left - front)
		return rest + behind*mean, sd * math.Sqrt(1+behind)
	}
	mu, s := end(v.me)
	lo, hi := mu-6*s, mu+6*s
	type dist struct{ mu, s float64 }
	ds := make([]dist, 0, len(v.others))
	for _, m := range v.others {
		if m, s := end(m); m+8*s > lo { // else surely ended before t could
			ds = append(ds, dist{m, s})
		}
	}
	const steps = 240
	dx := (hi - lo) / steps
	p := 0.0
	for k := 0; k < steps; k++ {
		x := lo + (float64(k)+0.5)*dx
		z := (x - mu) / s
		f := math.Exp(-z*z/2) / (s * math.Sqrt(2*math.Pi))
		for _, d := range ds {
			f *= 0.5 * math.Erfc(-(x-d.mu)/(d.s*math.Sqrt2))
		}
		p += f * dx
	}
	return min(max(p, 0), 1)
}

// minSpread is the least spread of wave times lastChance assumes, as a
// share of their mean.
const minSpread = 0.1

// waveTimes are the mean and spread of the phase's waves ended before
// now (0 when none has).
func (ps *phaseShare) waveTimes(now time.Time) (mean, spread time.Duration) {
	var n int
	var sum, sum2 float64 // hours
	for _, e := range ps.ends {
		if e.at.Before(now) {
			n++
			sum += e.took.Hours()
			sum2 += e.took.Hours() * e.took.Hours()
		}
	}
	if n == 0 {
		return 0, 0
	}
	h := sum / float64(n)
	return time.Duration(h * float64(time.Hour)), time.Duration(math.Sqrt(max(sum2/float64(n)-h*h, 0)) * float64(time.Hour))
}

// each runs fn for every slot at once, within the run's bound.
func (pr *policyRun) each(slots []*slot, fn func(s *slot)) {
	var wg sync.WaitGroup
	for _, s := range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr.sem <- struct{}{}
			defer func() { <-pr.sem }()
			fn(s)
		}()
	}
	wg.Wait()
}

// phases runs the policy's phases in order over slots, each phase a
// barrier across them.
func (pr *policyRun) phases(ctx context.Context, slots []*slot) {
	e, p := pr.e, pr.p
	for i := range p.Spec.Phases {
		ph, st := &p.Spec.Phases[i], &pr.plan.Stages[i]
		var here []*slot
		for _, s := range slots {
			if slices.Contains(s.phases, i) {
				here = append(here, s)
			}
		}
		if len(here) == 0 {
			continue
		}
		dec, ok := pr.decisions[i]
		if !ok {
			dec = promote.Decision{Phase: st.Name, Eligible: true}
		}
		if !dec.Eligible {
			msg := fmt.Sprintf("waits for phase %s: %s", dec.From, dec.Reason)
			if !dec.EligibleAt.IsZero() {
				msg += "; eligible from " + dec.EligibleAt.UTC().Format(time.RFC3339)
			}
			pr.stopAt(slots, i, result.StatusWaiting, "promotion-waiting", msg)
			return
		}
		promo, override, err := pr.replay(ctx, st, dec)
		if err != nil {
			pr.stopAt(slots, i, result.StatusError, "promotion", err.Error())
			return
		}
		proven := pr.proven
		ts := make([]*target, len(here))
		for k, s := range here {
			ts[k] = s.t
		}
		share := newPhaseShare(ts)
		pr.each(here, func(s *slot) {
			s.t.override = override
			s.t.peers = share
			s.t.seen = pr.seen // nil (a bare policyRun): each wave keeps its own
			rp := s.t.runPhase(ctx, ph, st, proven || dec.Source != nil)
			share.mark(s.t, -1, e.opt.Clock.Now(), true)
			s.t.override = nil
			rp.Promotion = promo
			s.res.Phases = append(s.res.Phases, rp)
			pr.publish(s)
		})
		pr.each(here, func(s *slot) {
			rp := &s.res.Phases[len(s.res.Phases)-1]
			s.t.exportFindings(ctx, st, rp)
		})
		pr.record(ctx, here, st, dec, promo)
		var blocked []string
		passed := false
		for _, s := range here {
			rp := s.res.Phases[len(s.res.Phases)-1]
			switch rp.Status {
			case result.StatusPassed, result.StatusDryRun:
				passed = true
				if rp.Counts.Targeted > rp.Counts.Skipped {
					pr.proven = true
				}
			case result.StatusSkipped:
			default:
				why := ""
				if len(rp.Reasons) > 0 {
					why = " (" + rp.Reasons[0].Code + ")"
				}
				blocked = append(blocked, fmt.Sprintf("%s/%s: %s%s", s.res.AccountID, s.region, rp.Status, why))
			}
		}
		if ctx.Err() != nil || i == len(p.Spec.Phases)-1 {
			return
		}
		if len(blocked) > 0 {
			pr.notify(ctx, notify.Event{Kind: notify.PhaseFailed, Phase: ph.Name,
				Summary: fmt.Sprintf("phase %s of %s did not pass in %s; later phases are not sent", ph.Name, p.Metadata.Name, strings.Join(blocked, ", "))})
			pr.stopAt(slots, i+1, result.StatusHalted, "halted", fmt.Sprintf("not sent: phase %s did not pass in %s", ph.Name, strings.Join(blocked, ", ")))
			return
		}
		if soak := st.Soak; soak > 0 && passed && !e.opt.DryRun {
			e.opt.Logger.Info("soaking before the next phase", "policy", p.Metadata.Name, "phase", ph.Name, "soak", soak)
			soakStart := e.opt.Clock.Now()
			err := pr.soak(ctx, here, st, soak)
			// The published copies share these phases: a reader of
			// OnProgress (the report file, the progress lines) holds e.mu.
			e.mu.Lock()
			for _, s := range here {
				last := &s.res.Phases[len(s.res.Phases)-1]
				if last.Status != result.StatusPassed {
					continue
				}
				last.SoakSeconds = soak.Seconds()
				if err != nil {
					last.SoakSeconds = e.opt.Clock.Now().Sub(soakStart).Seconds()
					// The soak is part of the phase: one cut short is not
					// a phase that passed.
					last.Status = result.StatusCancelled
					last.Reasons = append([]result.Reason{{Code: "cancelled", Message: fmt.Sprintf("its gate passed, but the run was cancelled during the soak, after %s of %s",
						e.opt.Clock.Now().Sub(soakStart).Round(time.Second), soak)}}, last.Reasons...)
				}
			}
			e.mu.Unlock()
			if err != nil {
				return
			}
			// An alarm during the soak failed the phase somewhere: the next
			// phase starts nowhere.
			var alarmed []string
			for _, s := range here {
				if last := s.res.Phases[len(s.res.Phases)-1]; last.Status == result.StatusFailed {
					alarmed = append(alarmed, fmt.Sprintf("%s/%s: %s", s.res.AccountID, s.region, last.Reasons[0].Message))
				}
			}
			if len(alarmed) > 0 {
				pr.stopAt(slots, i+1, result.StatusHalted, "halted", fmt.Sprintf("not sent: phase %s failed during its soak in %s", ph.Name, strings.Join(alarmed, "; ")))
				return
			}
		}
	}
}

// stopAt gives phase `from` and every later one, in each slot whose scope
// has them, the status and reason.
func (pr *policyRun) stopAt(slots []*slot, from int, status result.Status, code, msg string) {
	for _, s := range slots {
		for _, i := range s.phases {
			if i < from {
				continue
			}
			m := msg
			if i > from && status == result.StatusWaiting {
				m = fmt.Sprintf("waits for phase %s, which is waiting: %s", pr.p.Spec.Phases[from].Name, msg)
			}
			s.res.Phases = append(s.res.Phases, result.Phase{Name: pr.p.Spec.Phases[i].Name, Status: status, Reasons: []result.Reason{{Code: code, Message: m}}})
			pr.e.opt.Progress.PhaseEnded(progress.Key{Policy: pr.p.Metadata.Name, Phase: pr.p.Spec.Phases[i].Name, Account: s.res.AccountID, Region: s.region}, string(status), 0)
		}
		pr.publish(s)
	}
}

// finishTarget fills phases never reached (cancellation) and the target's
// status and reason from its phases.
func finishTarget(ctx context.Context, s *slot, p *policy.Policy) {
	res := s.res
	if res.Status != result.StatusRunning && res.Status != result.StatusHalted {
		return // set up failed: its status and reason say why
	}
	for _, i := range s.phases[min(len(res.Phases), len(s.phases)):] {
		res.Phases = append(res.Phases, result.Phase{Name: p.Spec.Phases[i].Name, Status: result.StatusCancelled,
			Reasons: []result.Reason{{Code: "cancelled", Message: "the run was cancelled before this phase"}}})
	}
	var ss []result.Status
	for _, ph := range res.Phases {
		ss = append(ss, ph.Status)
	}
	res.Status = result.Worst(ss...)
	if ctx.Err() != nil && res.Status.Severity() < result.StatusCancelled.Severity() {
		res.Status = result.StatusCancelled
	}
	for _, ph := range res.Phases {
		if ph.Status == res.Status && len(ph.Reasons) > 0 {
			res.Reason = fmt.Sprintf("%s: %s", ph.Name, ph.Reasons[0].Message)
			break
		}
	}
}

// setupTarget connects to one account-region, checks its change calendars,
// takes the policy's lock there and finds what an earlier attempt of this
// run sent. On failure it records why in res and returns a nil target;
// release (never nil when the target is) frees the lock.
func (e *Engine) setupTarget(ctx context.Context, p *policy.Policy, plan *policy.Rollout, account policy.Account, region string, res *result.Target) (*target, func()) {
	log := e.opt.Logger.With("policy", p.Metadata.Name, "region", region)
	c, err := e.opt.Connect(ctx, account.ID, account.RoleArn, region)
	if err != nil {
		res.Status, res.Reason = result.StatusError, fmt.Sprintf("connecting to account %s: %v", orSelf(account.ID), err)
		return nil, nil
	}
	res.AccountID = c.AccountID
	log = log.With("account", c.AccountID)
	// Backups and the health gate wait on the run's clock.
	if c.Backups != nil && c.Backups.Clock == nil {
		c.Backups.Clock = e.opt.Clock
	}
	if c.Health != nil && c.Health.Clock == nil {
		c.Health.Clock = e.opt.Clock
	}
	t := &target{e: e, pol: p, plan: plan, region: region, c: c, res: res, log: log, started: res.StartedAt, inflight: map[string]bool{}}

	if cals := p.Spec.Schedule; cals != nil && len(cals.ChangeCalendars) > 0 {
		if ok, why, err := t.calendarsOpen(ctx, cals.ChangeCalendars); err != nil {
			res.Status, res.Reason = result.StatusError, err.Error()
			return nil, nil
		} else if !ok {
			if !e.opt.ForceWindow {
				res.Status, res.Reason = result.StatusRefused, why+"; pass --force-window to patch anyway"
				return nil, nil
			}
			log.Warn("change calendar closed; patching anyway because of --force-window", "why", why)
		}
	}
	if e.opt.DryRun {
		return t, func() {}
	}
	l, err := lock.Acquire(ctx, c.Params, p.Metadata.Name, e.opt.RunID, e.opt.RunURL, e.opt.LockTTL, e.opt.Clock.Now())
	if err != nil {
		var held *lock.HeldError
		if errors.As(err, &held) {
			res.Status, res.Reason = result.StatusRefused, err.Error()
			res.Lock = &result.Lock{Parameter: held.Parameter, HolderRun: held.Holder.RunID, HolderURL: held.Holder.RunURL, Acquired: held.Holder.Started, Expires: held.Holder.Expires}
			return nil, nil
		}
		res.Status, res.Reason = result.StatusError, err.Error()
		return nil, nil
	}
	res.Lock = &result.Lock{Parameter: l.Param, HolderRun: l.Info.RunID, HolderURL: l.Info.RunURL, Acquired: l.Info.Started, Expires: l.Info.Expires, Held: true}
	release := func() {
		t.clearIntent()
		// Released on every exit path, with its own deadline so that a
		// cancelled run still releases it.
		rctx, cancel := context.WithTimeout(context.Background(), e.opt.CancelTimeout)
		defer cancel()
		if err := l.Release(rctx); err != nil {
			log.Error("could not release the lock", "err", err)
			res.Reason = strings.TrimSpace(res.Reason + "; lock not released: " + err.Error())
		}
	}
	// Commands an earlier attempt of this run sent (a re-run with the same
	// --run-id): found by Comment so nothing is sent twice. SnapshotId is
	// valid for about three days, so older attempts are not resumable.
	earlier, err := listRunCommands(ctx, c.Commands, hooks.DocumentFor(plan.Hooks), e.opt.Clock.Now().Add(-72*time.Hour), "patchgate run="+e.opt.RunID+" ")
	if err != nil {
		res.Status, res.Reason = result.StatusError, err.Error()
		release()
		return nil, nil
	}
	// A send an earlier run left open is settled before anything is sent.
	if err := t.reconcileIntent(ctx, earlier); err != nil {
		res.Status, res.Reason = intentStatus(err), err.Error()
		release()
		return nil, nil
	}
	t.earlier = earlier
	e.adoptSnapshot(earlier)
	for _, cmd := range earlier {
		// Verification measures "patched by this run", which for a
		// resumed run began with its first attempt.
		if rt := aws.ToTime(cmd.RequestedDateTime); !rt.IsZero() && rt.Before(t.started) {
			t.started = rt
		}
	}
	return t, release
}

func orSelf(id string) string {
	if id == "" {
		return "(of the credentials)"
	}
	return id
}

// adoptSnapshot reuses the SnapshotId of an earlier attempt of this run, so
// a resumed run installs the same patch set as the waves already done.
func (e *Engine) adoptSnapshot(earlier map[string]ssmtypes.Command) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, cmd := range earlier {
		if v := cmd.Parameters["SnapshotId"]; len(v) == 1 && v[0] != "" {
			e.snapshotID = v[0]
			e.run.SnapshotID = v[0]
			return
		}
	}
}

func (e *Engine) snapshot() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.snapshotID
}

func (t *target) calendarsOpen(ctx context.Context, names []string) (bool, string, error) {
	out, err := t.c.Calendars.GetCalendarState(ctx, &ssm.GetCalendarStateInput{CalendarNames: names})
	if err != nil {
		return false, "", fmt.Errorf("reading change calendars %s with ssm:GetCalendarState: %w", strings.Join(names, ", "), err)
	}
	if out.State == ssmtypes.CalendarStateClosed {
		why := fmt.Sprintf("change calendar %s is CLOSED", strings.Join(names, ", "))
		if s := aws.ToString(out.NextTransitionTime); s != "" {
			why += " until " + s
		}
		return false, why, nil
	}
	return true, "", nil
}

// runPhase patches one phase and decides its gate.
func (t *target) runPhase(ctx context.Context, ph *policy.Phase, st *policy.Stage, proven bool) (rp result.Phase) {
	e := t.e
	// rp is the named result so that the deferred EndedAt reaches the caller.
	rp = result.Phase{Name: st.Name, Status: result.StatusRunning, StartedAt: e.opt.Clock.Now(), SuccessThreshold: st.SuccessThreshold.String()}
	t.key = progress.Key{Policy: t.plan.Policy, Phase: st.Name, Account: t.c.AccountID, Region: t.region}
	t.doneOK, t.doneFailed = 0, 0
	defer func() {
		rp.EndedAt = e.opt.Clock.Now()
		e.opt.Progress.PhaseEnded(t.key, string(rp.Status), progress.HeldBack(rp))
	}()
	settings := gate.SettingsOf(st)
	ev := gate.Evidence{DryRun: e.opt.DryRun, VerifierConfigured: t.c.Verifier != nil}
	decide := func(s gate.Settings) result.Phase {
		rp.Status, rp.Reasons = gate.Decide(ev, s)
		return rp
	}
	stop := func(err error, what string) result.Phase {
		if ctx.Err() != nil {
			ev.Cancelled = true
		} else {
			ev.Failure = &gate.Failure{Code: apiErrorCode(err, what), Message: err.Error()}
		}
		ev.DryRun = false
		return decide(settings)
	}

	insts, err := discover.Instances(ctx, t.c.Inventory, st.Targets.Tags, st.Targets.InstanceIDs)
	if err != nil {
		return stop(err, "inventory")
	}
	var online []Instance
	var offline []result.Instance
	for _, in := range insts {
		if in.Online {
			online = append(online, in)
			continue
		}
		o, msg := result.OutcomeOffline, "SSM agent "+in.Ping+": counted against the success threshold (offline: fail)"
		if !st.OfflineFails {
			o, msg = result.OutcomeSkipped, "SSM agent "+in.Ping+": skipped (offline: skip)"
		}
		offline = append(offline, result.Instance{ID: in.ID, Name: in.Name, Platform: in.Platform, Outcome: o, Error: msg})
	}
	var offCounts result.Counts
	for _, o := range offline {
		offCounts.Add(o.Outcome)
	}
	offlineWave := func(s result.Status) {
		if len(offline) > 0 {
			rp.Waves = append(rp.Waves, result.Wave{Index: 0, Share: "offline", Status: s, Counts: offCounts, Instances: offline})
		}
	}
	if len(online) == 0 && offCounts.Offline == 0 {
		offlineWave(result.StatusSkipped)
		rp.Counts = offCounts
		rp.Status = result.StatusSkipped
		rp.Reasons = append(rp.Reasons, result.Reason{Code: "no-targets", Message: "no Online instance matched the phase's targets"})
		return rp
	}
	if st.Index > 0 && !proven && len(online) > 0 {
		// Never patch a later ring when the earlier rings patched nothing:
		// nothing was proven safe.
		rp.Status = result.StatusHalted
		rp.Reasons = append(rp.Reasons, result.Reason{Code: "unproven", Message: fmt.Sprintf("%d instances are targeted, but no earlier phase patched any instance, so nothing was proven; give the earlier phase targets", len(online))})
		return rp
	}
	// Preflight: when the instances that cannot be sent already make the
	// threshold unreachable, sending would patch for a phase that fails.
	all := offCounts
	for range online {
		all.Targeted++
	}
	if pf := gate.Preflight(all, len(online), settings); pf != nil {
		hw := result.Wave{Index: 1, Share: "preflight", Status: result.StatusHalted}
		for _, in := range online {
			ri := result.Instance{ID: in.ID, Name: in.Name, Platform: in.Platform, Outcome: result.OutcomeCancelled, Error: "not sent: " + pf.Message}
			hw.Instances = append(hw.Instances, ri)
			hw.Counts.Add(ri.Outcome)
		}
		if len(online) > 0 {
			rp.Waves = append(rp.Waves, hw)
		}
		offlineWave(result.StatusFailed)
		rp.Counts = hw.Counts.Plus(offCounts)
		ev.DryRun = false
		ev.Preflight = pf
		return decide(settings)
	}

	hb, breach, err := t.healthBefore(ctx, st)
	if err != nil {
		return stop(fmt.Errorf("health gate: %w", err), "health")
	}
	if breach != nil {
		ev.DryRun = false
		ev.Health = breach
		rp.Counts = all
		return decide(settings)
	}
	t.healthBase = hb

	scope := Scope{Policy: t.pol, Phase: ph, Stage: st, AccountID: t.c.AccountID, Region: t.region, RunID: e.opt.RunID, RunStarted: e.run.StartedAt,
		Slack: t.slack, LastChance: t.lastChance}
	if t.started.Before(scope.RunStarted) {
		scope.RunStarted = t.started
	}
	var before any
	if t.c.Verifier != nil && !e.opt.DryRun {
		ids := make([]string, len(online))
		for i, in := range online {
			ids[i] = in.ID
		}
		if before, err = t.c.Verifier.Before(ctx, scope, ids); err != nil {
			return stop(fmt.Errorf("taking the before-state: %w", err), "before-state")
		}
	}

	waves := splitWaves(online, st)
	e.opt.Progress.PhaseStarted(t.key, len(online)+len(offline), len(waves))
	var instances []result.Instance
	for wi, wave := range waves {
		if err := t.announceWave(ctx, ph, wi+1, wave); err != nil {
			// Without the crash record nothing of the wave is sent.
			_, code, msg := announceFailure(ctx, err)
			if ctx.Err() != nil {
				ev.Cancelled = true
			} else {
				ev.Failure = &gate.Failure{Code: code, Message: msg}
			}
			return decide(settings)
		}
		ready, held, backups, err := t.backupWave(ctx, st, wi+1, wave)
		if err != nil {
			return stop(err, "backup")
		}
		t.held = held
		w, gw := t.runWave(ctx, st, wi+1, ready)
		w.Backups = backups
		restoreCommands(t.region, &w)
		t.doneOK += w.Counts.Succeeded
		t.doneFailed += w.Counts.Failed + w.Counts.TimedOut + w.Counts.Inconclusive
		rp.Waves = append(rp.Waves, w)
		ev.Waves = append(ev.Waves, gw)
		instances = append(instances, w.Instances...)
		e.progress()
		if ctx.Err() != nil {
			break
		}
		if hr, err := t.healthAfter(ctx, st, hb, fmt.Sprintf("after %s wave %d", st.Name, w.Index)); err != nil {
			return stop(fmt.Errorf("health gate: %w", err), "health")
		} else if hr != nil {
			ev.Health = hr
		}
		// A wave that does not pass stops the phase: later waves exist to
		// limit the blast radius; so does an alarm.
		if !e.opt.DryRun && (w.Status != result.StatusPassed || ev.Health != nil) {
			for _, rest := range waves[wi+1:] {
				hw := result.Wave{Index: len(rp.Waves) + 1, Share: rest.share, Status: result.StatusHalted}
				for _, in := range rest.instances {
					ri := result.Instance{ID: in.ID, Name: in.Name, Platform: in.Platform, Outcome: result.OutcomeCancelled,
						Error: fmt.Sprintf("not sent: wave %d is %s", w.Index, w.Status)}
					hw.Instances = append(hw.Instances, ri)
					hw.Counts.Add(ri.Outcome)
				}
				rp.Waves = append(rp.Waves, hw)
				ev.Waves = append(ev.Waves, gate.Wave{Index: hw.Index, Unsent: len(hw.Instances)})
				instances = append(instances, hw.Instances...)
			}
			break
		}
	}
	offlineWave(result.StatusSkipped)
	instances = append(instances, offline...)
	for _, w := range rp.Waves {
		rp.Counts = rp.Counts.Plus(w.Counts)
	}
	ev.Counts = rp.Counts
	for _, in := range instances {
		if in.Outcome == result.OutcomeInconclusive {
			ev.Inconclusive = append(ev.Inconclusive, in.ID)
		}
	}
	ev.Cancelled = ctx.Err() != nil
	if e.opt.DryRun {
		return decide(settings)
	}

	// The sending half first: evidence is gathered only for a phase whose
	// invocations passed.
	if status, _ := gate.Decide(ev, gate.Settings{Threshold: settings.Threshold}); status != result.StatusPassed || t.c.Verifier == nil {
		return decide(settings)
	}
	v, err := t.c.Verifier.After(ctx, scope, before, instances)
	if err != nil {
		return stop(fmt.Errorf("verifying: %w", err), "verification")
	}
	rp.Verification = v
	ev.Verification = v
	rp = decide(settings)
	if v != nil {
		v.Verdict = rp.Status // the gate's word, so the JSON never disagrees with itself
	}
	return rp
}

// waveSpec is one wave's instances.
type waveSpec struct {
	share     string
	instances []Instance
	// left is how many waves of the phase come after it (0: the last,
	// whose end the rescan wait follows).
	left int
}

// splitWaves cuts instances (in a stable order) into the stage's waves by
// their cumulative shares: ["10%","50%","100%"] over 200 instances gives
// 20, 80 and 100. Empty waves are dropped; the one that ends the phase is
// marked last.
func splitWaves(insts []Instance, st *policy.Stage) []waveSpec {
	var out []waveSpec
	done := 0
	for i, n := range st.WaveEnds(len(insts)) {
		if n > done {
			out = append(out, waveSpec{share: st.Waves[i].String(), instances: insts[done:n]})
			done = n
		}
	}
	for i := range out {
		out[i].left = len(out) - 1 - i
	}
	return out
}

// windowOpen applies the policy's schedule and freezes at now.
func windowOpen(p *policy.Policy, now time.Time) (bool, string) {
	s := p.Spec.Schedule
	if s == nil {
		return true, ""
	}
	if f, in := s.FreezeAt(now); in {
		return false, fmt.Sprintf("inside the freeze %s..%s (%s)", f.From, f.To, f.Reason)
	}
	if open, next := s.WindowAt(now); !open {
		msg := fmt.Sprintf("outside the schedule %q (%s)", s.Cron, s.Timezone)
		if !next.IsZero() {
			msg += "; next window opens " + next.UTC().Format(time.RFC3339)
		}
		return false, msg
	}
	return true, ""
}

// sortedIDs returns the instance ids in order.
func sortedIDs(insts []Instance) []string {
	ids := make([]string, len(insts))
	for i, in := range insts {
		ids[i] = in.ID
	}
	sort.Strings(ids)
	return ids
}

// phaseNames lists a policy's phases in order ("staging -> production").
func phaseNames(p *policy.Policy) string {
	names := make([]string, len(p.Spec.Phases))
	for i, ph := range p.Spec.Phases {
		names[i] = ph.Name
	}
	return strings.Join(names, " -> ")
}
