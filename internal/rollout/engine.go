// Package rollout runs patch policies: for each policy, account and region,
// it patches the phases in order (staging before production), wave by wave,
// with AWS-RunPatchBaseline, and halts a policy at the first gate that does
// not pass. It produces a result.Run that says exactly what happened,
// including on cancellation.
package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/lock"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/result"
	"github.com/patchgate/patchgate/internal/version"
)

// Clients are the AWS APIs of one account and region.
type Clients struct {
	AccountID string
	Commands  Commands
	Inventory Inventory
	Calendars Calendars
	Params    lock.ParameterStore
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
	AccountID  string
	Region     string
	RunID      string
	RunStarted time.Time
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
	if o.CancelTimeout <= 0 {
		o.CancelTimeout = 3 * time.Second
	}
	if o.LockTTL <= 0 {
		o.LockTTL = 12 * time.Hour
	}
}

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
		pi, ti  int
		pol     *policy.Policy
		account policy.Account
		region  string
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
		pi := len(e.run.Policies)
		accounts := p.Spec.Accounts
		if len(accounts) == 0 {
			accounts = []policy.Account{{}} // the credentials' own account
		}
		for _, a := range accounts {
			for _, r := range p.Spec.Regions {
				rp.Targets = append(rp.Targets, result.Target{AccountID: a.ID, Region: r, Status: result.StatusRunning})
				jobs = append(jobs, job{pi: pi, ti: len(rp.Targets) - 1, pol: p, account: a, region: r})
			}
		}
		e.run.Policies = append(e.run.Policies, rp)
	}

	g := new(errgroup.Group)
	g.SetLimit(e.opt.Parallel)
	for _, j := range jobs {
		g.Go(func() error {
			t := e.runTarget(ctx, j.pol, j.account, j.region)
			e.mu.Lock()
			e.run.Policies[j.pi].Targets[j.ti] = t
			e.mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()

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
	for _, s := range []result.Status{result.StatusPassed, result.StatusFailed, result.StatusInconclusive, result.StatusCancelled, result.StatusRefused, result.StatusError, result.StatusHalted, result.StatusDryRun, result.StatusSkipped} {
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
	// intentPut and unsettled follow the send intent (intent.go).
	intentPut, unsettled bool
}

func (e *Engine) runTarget(ctx context.Context, p *policy.Policy, account policy.Account, region string) (res result.Target) {
	res = result.Target{AccountID: account.ID, Region: region, StartedAt: e.opt.Clock.Now()}
	log := e.opt.Logger.With("policy", p.Metadata.Name, "region", region)
	defer func() { res.EndedAt = e.opt.Clock.Now() }()

	c, err := e.opt.Connect(ctx, account.ID, account.RoleArn, region)
	if err != nil {
		res.Status, res.Reason = result.StatusError, fmt.Sprintf("connecting to account %s: %v", orSelf(account.ID), err)
		return res
	}
	res.AccountID = c.AccountID
	log = log.With("account", c.AccountID)
	t := &target{e: e, pol: p, region: region, c: c, res: &res, log: log, started: res.StartedAt, inflight: map[string]bool{}}

	if cals := p.Spec.Schedule; cals != nil && len(cals.ChangeCalendars) > 0 {
		if ok, why, err := t.calendarsOpen(ctx, cals.ChangeCalendars); err != nil {
			res.Status, res.Reason = result.StatusError, err.Error()
			return res
		} else if !ok {
			if !e.opt.ForceWindow {
				res.Status, res.Reason = result.StatusRefused, why+"; pass --force-window to patch anyway"
				return res
			}
			log.Warn("change calendar closed; patching anyway because of --force-window", "why", why)
		}
	}

	if !e.opt.DryRun {
		l, err := lock.Acquire(ctx, c.Params, p.Metadata.Name, e.opt.RunID, e.opt.RunURL, e.opt.LockTTL, e.opt.Clock.Now())
		if err != nil {
			var held *lock.HeldError
			if errors.As(err, &held) {
				res.Status, res.Reason = result.StatusRefused, err.Error()
				res.Lock = &result.Lock{Parameter: held.Parameter, HolderRun: held.Holder.RunID, HolderURL: held.Holder.RunURL, Acquired: held.Holder.Started, Expires: held.Holder.Expires}
				return res
			}
			res.Status, res.Reason = result.StatusError, err.Error()
			return res
		}
		res.Lock = &result.Lock{Parameter: l.Param, HolderRun: l.Info.RunID, HolderURL: l.Info.RunURL, Acquired: l.Info.Started, Expires: l.Info.Expires, Held: true}
		defer func() {
			// Released on every exit path, with its own deadline so that a
			// cancelled run still releases it.
			rctx, cancel := context.WithTimeout(context.Background(), e.opt.CancelTimeout)
			defer cancel()
			if err := l.Release(rctx); err != nil {
				log.Error("could not release the lock", "err", err)
				res.Reason = strings.TrimSpace(res.Reason + "; lock not released: " + err.Error())
			}
		}()
		// Commands an earlier attempt of this run sent (a re-run with the same
		// --run-id): found by Comment so nothing is sent twice. SnapshotId is
		// valid for about three days, so older attempts are not resumable.
		earlier, err := listRunCommands(ctx, c.Commands, e.opt.Clock.Now().Add(-72*time.Hour), "patchgate run="+e.opt.RunID+" ")
		if err != nil {
			res.Status, res.Reason = result.StatusError, err.Error()
			return res
		}
		// A send an earlier run left open is settled before anything is sent.
		if err := t.reconcileIntent(ctx, earlier); err != nil {
			res.Status, res.Reason = intentStatus(err), err.Error()
			return res
		}
		defer t.clearIntent()
		t.earlier = earlier
		e.adoptSnapshot(earlier)
		for _, cmd := range earlier {
			// Verification measures "patched by this run", which for a
			// resumed run began with its first attempt.
			if rt := aws.ToTime(cmd.RequestedDateTime); !rt.IsZero() && rt.Before(t.started) {
				t.started = rt
			}
		}
	}

	prev := result.StatusPassed
	var prevName string
	proven := false // an earlier phase patched instances and passed
	for i := range p.Spec.Phases {
		ph := &p.Spec.Phases[i]
		if prev != result.StatusPassed && prev != result.StatusSkipped && prev != result.StatusDryRun {
			res.Phases = append(res.Phases, result.Phase{Name: ph.Name, Status: result.StatusHalted,
				Reasons: []result.Reason{{Code: "halted", Message: fmt.Sprintf("not sent: phase %s is %s", prevName, prev)}}})
			continue
		}
		rp := t.runPhase(ctx, ph, i, proven)
		res.Phases = append(res.Phases, rp)
		prev, prevName = rp.Status, ph.Name
		if (rp.Status == result.StatusPassed || rp.Status == result.StatusDryRun) && rp.Counts.Targeted > rp.Counts.Skipped {
			proven = true
		}
		if ctx.Err() != nil {
			break
		}
		if rp.Status == result.StatusPassed && i < len(p.Spec.Phases)-1 {
			if soak := ph.Soak.Duration; soak > 0 {
				log.Info("soaking before the next phase", "phase", ph.Name, "soak", soak)
				if err := e.opt.Clock.Sleep(ctx, soak); err != nil {
					res.Phases[len(res.Phases)-1].Reasons = append(res.Phases[len(res.Phases)-1].Reasons,
						result.Reason{Code: "cancelled", Message: "cancelled during the soak"})
					break
				}
				res.Phases[len(res.Phases)-1].SoakSeconds = soak.Seconds()
			}
		}
	}
	// Phases never reached because of cancellation.
	for i := len(res.Phases); i < len(p.Spec.Phases); i++ {
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
	return res
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
func (t *target) runPhase(ctx context.Context, ph *policy.Phase, index int, proven bool) (rp result.Phase) {
	e := t.e
	// rp is the named result so that the deferred EndedAt reaches the caller.
	rp = result.Phase{Name: ph.Name, Status: result.StatusRunning, StartedAt: e.opt.Clock.Now(), SuccessThreshold: ph.SuccessThreshold}
	defer func() { rp.EndedAt = e.opt.Clock.Now() }()
	fail := func(s result.Status, code, msg string) result.Phase {
		rp.Status = s
		rp.Reasons = append(rp.Reasons, result.Reason{Code: code, Message: msg})
		return rp
	}

	insts, err := Discover(ctx, t.c.Inventory, ph.Targets.Tags, ph.Targets.InstanceIDs)
	if err != nil {
		if ctx.Err() != nil {
			return fail(result.StatusCancelled, "cancelled", "cancelled during inventory")
		}
		return fail(result.StatusError, "inventory", err.Error())
	}
	var online []Instance
	var offline []result.Instance
	skipOffline := ph.Offline == "skip"
	for _, in := range insts {
		if in.Online {
			online = append(online, in)
			continue
		}
		o, msg := result.OutcomeOffline, "SSM agent "+in.Ping+": counted against the success threshold (offline: fail)"
		if skipOffline {
			o, msg = result.OutcomeSkipped, "SSM agent "+in.Ping+": skipped (offline: skip)"
		}
		offline = append(offline, result.Instance{ID: in.ID, Name: in.Name, Platform: in.Platform, Outcome: o, Error: msg})
	}
	if len(online) == 0 {
		rp.Waves = nil
		for _, o := range offline {
			rp.Counts.Add(o.Outcome)
		}
		if len(offline) > 0 && !skipOffline {
			rp.Waves = []result.Wave{{Index: 0, Share: "offline", Status: result.StatusFailed, Counts: rp.Counts, Instances: offline}}
			return fail(result.StatusFailed, "success-threshold", fmt.Sprintf("none of the %d targeted instances is Online", len(offline)))
		}
		rp.Status = result.StatusSkipped
		rp.Reasons = append(rp.Reasons, result.Reason{Code: "no-targets", Message: "no Online instance matched the phase's targets"})
		return rp
	}
	if index > 0 && !proven {
		// Never patch a later ring when the earlier rings patched nothing:
		// nothing was proven safe.
		return fail(result.StatusHalted, "unproven", fmt.Sprintf("%d instances are targeted, but no earlier phase patched any instance, so nothing was proven; give the earlier phase targets", len(online)))
	}

	scope := Scope{Policy: t.pol, Phase: ph, AccountID: t.c.AccountID, Region: t.region, RunID: e.opt.RunID, RunStarted: e.run.StartedAt}
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
			if ctx.Err() != nil {
				return fail(result.StatusCancelled, "cancelled", "cancelled while taking the before-state")
			}
			return fail(result.StatusError, "before-state", err.Error())
		}
	}

	waves := SplitWaves(online, ph.Waves)
	thresh := threshold(ph.SuccessThreshold)
	var all []result.Instance
	for wi, wave := range waves {
		if err := t.announceWave(ctx, ph, wi+1, wave); err != nil {
			return fail(announceFailure(ctx, err))
		}
		w := t.runWave(ctx, ph, index, wi+1, wave)
		rp.Waves = append(rp.Waves, w)
		all = append(all, w.Instances...)
		e.progress()
		if ctx.Err() != nil {
			break
		}
		// A wave that misses the threshold stops the phase: later waves
		// exist to limit the blast radius.
		if !e.opt.DryRun && !meets(w.Counts, thresh) {
			for _, rest := range waves[wi+1:] {
				hw := result.Wave{Index: len(rp.Waves) + 1, Share: rest.share, Status: result.StatusHalted}
				for _, in := range rest.instances {
					ri := result.Instance{ID: in.ID, Name: in.Name, Platform: in.Platform, Outcome: result.OutcomeCancelled, Error: "not sent: an earlier wave missed the success threshold"}
					hw.Instances = append(hw.Instances, ri)
					hw.Counts.Add(ri.Outcome)
				}
				rp.Waves = append(rp.Waves, hw)
				all = append(all, hw.Instances...)
			}
			break
		}
	}
	if len(offline) > 0 {
		ow := result.Wave{Index: 0, Share: "offline", Status: result.StatusSkipped, Instances: offline}
		for _, o := range offline {
			ow.Counts.Add(o.Outcome)
		}
		rp.Waves = append(rp.Waves, ow)
		all = append(all, offline...)
	}
	for _, w := range rp.Waves {
		rp.Counts = rp.Counts.Plus(w.Counts)
	}

	if e.opt.DryRun {
		rp.Status = result.StatusDryRun
		return rp
	}
	if ctx.Err() != nil {
		return fail(result.StatusCancelled, "cancelled", "the run was cancelled; in-flight commands were cancelled")
	}

	// A command that may have run unseen makes the phase inconclusive.
	if why := unknownSends(rp.Waves); why != nil {
		rp.Status = result.StatusInconclusive
		rp.Reasons = append(rp.Reasons, *why)
		return rp
	}
	// Gate 1: invocation outcomes against the success threshold.
	switch verdict := thresholdVerdict(rp.Counts, thresh); verdict {
	case result.StatusFailed:
		return fail(result.StatusFailed, "success-threshold", fmt.Sprintf("%d of %d instances succeeded (%s), below the success threshold %s",
			rp.Counts.Succeeded, denominator(rp.Counts), pct(rp.Counts.Succeeded, denominator(rp.Counts)), ph.SuccessThreshold))
	case result.StatusInconclusive:
		var ids []string
		for _, in := range all {
			if in.Outcome == result.OutcomeInconclusive {
				ids = append(ids, in.ID)
			}
		}
		rp.Status = result.StatusInconclusive
		rp.Reasons = append(rp.Reasons, result.Reason{Code: "inconclusive-invocations", Instances: ids,
			Message: fmt.Sprintf("%d instances have no final command status; the success threshold %s depends on them", len(ids), ph.SuccessThreshold)})
		return rp
	}

	// Gate 2: evidence (patch compliance, Inspector rescan). A phase that
	// asks for evidence nobody can gather is inconclusive, never green.
	if t.c.Verifier == nil && (ph.Verify.ComplianceEnabled() || ph.Verify.Inspector.Enabled) {
		return fail(result.StatusInconclusive, "verification-unavailable", "the phase asks for verification, but no verifier is configured for this run")
	}
	if t.c.Verifier != nil {
		v, err := t.c.Verifier.After(ctx, scope, before, all)
		if err != nil {
			if ctx.Err() != nil {
				return fail(result.StatusCancelled, "cancelled", "cancelled during verification")
			}
			return fail(result.StatusError, "verification", err.Error())
		}
		rp.Verification = v
		if v != nil && v.Verdict != result.StatusPassed {
			rp.Status = v.Verdict
			if v.Verdict != result.StatusFailed && v.Verdict != result.StatusInconclusive {
				rp.Status = result.StatusInconclusive
			}
			rp.Reasons = append(rp.Reasons, v.Reasons...)
			if len(v.Reasons) == 0 {
				rp.Reasons = append(rp.Reasons, result.Reason{Code: "verification", Message: "verification did not pass"})
			}
			return rp
		}
	}
	rp.Status = result.StatusPassed
	return rp
}

// waveSpec is one wave's instances.
type waveSpec struct {
	share     string
	instances []Instance
}

// SplitWaves cuts instances (in a stable order) into waves by cumulative
// shares: ["10%","50%","100%"] over 200 instances gives 20, 80 and 100.
// Each wave has at least one instance while any remain, and empty waves are
// dropped.
func SplitWaves(insts []Instance, shares []string) []waveSpec {
	if len(shares) == 0 {
		shares = []string{"100%"}
	}
	var out []waveSpec
	done := 0
	for i, n := range WaveEnds(len(insts), shares) {
		if n > done {
			out = append(out, waveSpec{share: shares[i], instances: insts[done:n]})
			done = n
		}
	}
	return out
}

// WaveEnds is where each wave of n instances ends (cumulative, one per
// share; a wave that would be empty ends where the previous one did).
func WaveEnds(n int, shares []string) []int {
	if len(shares) == 0 {
		shares = []string{"100%"}
	}
	out := make([]int, len(shares))
	done := 0
	for i, s := range shares {
		end := (n*percentOf(s) + 99) / 100 // ceiling
		if i == len(shares)-1 {
			end = n
		}
		if end <= done && done < n {
			end = done + 1
		}
		end = min(end, n)
		done = max(done, end)
		out[i] = done
	}
	return out
}

// percentOf parses "10%" -> 10. Policies are validated, so a bad value
// cannot reach here; 100 is the safe reading (one wave).
func percentOf(s string) int {
	v, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(s), "%"))
	if err != nil || v <= 0 || v > 100 {
		return 100
	}
	return v
}

// threshold parses successThreshold; empty means 100%.
func threshold(s string) int {
	if s == "" {
		return 100
	}
	return percentOf(s)
}

// denominator is what the threshold is measured against: every targeted
// instance except those deliberately skipped.
func denominator(c result.Counts) int { return c.Targeted - c.Skipped - c.Pending }

func meets(c result.Counts, thresh int) bool {
	d := denominator(c)
	return d == 0 || c.Succeeded*100 >= thresh*d
}

// thresholdVerdict decides the invocation gate. Inconclusive instances are
// counted against the threshold first; if that fails but would pass with
// them, the verdict is inconclusive rather than a guess either way.
func thresholdVerdict(c result.Counts, thresh int) result.Status {
	d := denominator(c)
	if d == 0 {
		return result.StatusPassed
	}
	if c.Succeeded*100 >= thresh*d {
		return result.StatusPassed
	}
	if (c.Succeeded+c.Inconclusive)*100 >= thresh*d && c.Inconclusive > 0 {
		return result.StatusInconclusive
	}
	return result.StatusFailed
}

func pct(n, d int) string {
	if d == 0 {
		return "n/a"
	}
	return strconv.FormatFloat(float64(n)*100/float64(d), 'f', 1, 64) + "%"
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
