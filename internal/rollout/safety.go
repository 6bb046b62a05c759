package rollout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/patchgate/patchgate/internal/backup"
	"github.com/patchgate/patchgate/internal/health"
	"github.com/patchgate/patchgate/internal/lock"
	"github.com/patchgate/patchgate/internal/notify"
	"github.com/patchgate/patchgate/internal/policy"
	"github.com/patchgate/patchgate/internal/result"
	"github.com/patchgate/patchgate/internal/securityhub"
)

// healthBefore reads the phase's alarms before anything is sent: an alarm
// already in ALARM (unless the policy allows it) or one that does not exist
// refuses the phase. It returns the reading later checks compare with.
func (t *target) healthBefore(ctx context.Context, st *policy.Stage) (*health.Reading, *result.Reason, error) {
	if st.Health == nil || t.e.opt.DryRun {
		return nil, nil, nil
	}
	if t.c.Health == nil {
		return nil, nil, errors.New("the phase has a health gate (verify.health), but this run cannot read CloudWatch alarms")
	}
	rd, err := t.c.Health.Read(ctx, *st.Health)
	if err != nil {
		return nil, nil, err
	}
	if err := health.Start(*st.Health, st.Name, rd); err != nil {
		return nil, &result.Reason{Code: "health-alarm", Message: "not sent: " + err.Error()}, nil
	}
	return &rd, nil, nil
}

// healthAfter checks the alarms after a wave: one that entered ALARM since
// the phase began fails it, and nothing later is sent.
func (t *target) healthAfter(ctx context.Context, st *policy.Stage, base *health.Reading, when string) (*result.Reason, error) {
	if base == nil {
		return nil, nil
	}
	_, err := t.c.Health.Check(ctx, *st.Health, *base, when)
	var b *health.Breach
	if errors.As(err, &b) {
		return &result.Reason{Code: "health-alarm", Message: b.Error()}, nil
	}
	return nil, err
}

// backupWave snapshots the wave's instances before it is sent. An instance
// whose backup is not ready is not patched: it is held back with the
// reason, and counts against the success threshold.
func (t *target) backupWave(ctx context.Context, st *policy.Stage, waveNo int, w waveSpec) (waveSpec, []result.Instance, []result.Backup, error) {
	bp := t.plan.Backup
	if bp == nil || t.e.opt.DryRun {
		return w, nil, nil, nil
	}
	if t.c.Backups == nil {
		return w, nil, nil, errors.New("the policy asks for a backup before patching (install.backup), but this run cannot reach EC2")
	}
	targets := make([]backup.Target, len(w.instances))
	for i, in := range w.instances {
		targets[i] = backup.Target{Policy: t.plan.Policy, RunID: t.e.opt.RunID, Phase: st.Name, Wave: waveNo, InstanceID: in.ID}
	}
	rs, err := t.c.Backups.Wave(ctx, targets, *bp)
	if err != nil {
		return w, nil, nil, fmt.Errorf("backing up wave %d: %w", waveNo, err)
	}
	// The wave as cut, less the instances held back.
	ready := w
	ready.instances = nil
	var held []result.Instance
	var rows []result.Backup
	for i, r := range rs {
		in := w.instances[i]
		b := result.Backup{InstanceID: r.InstanceID, Reused: r.Reused, Reason: r.Reason}
		for _, s := range r.Snapshots {
			b.Snapshots = append(b.Snapshots, s.ID)
			b.Volumes = append(b.Volumes, s.VolumeID)
		}
		rows = append(rows, b)
		if r.Ready() {
			ready.instances = append(ready.instances, in)
			continue
		}
		held = append(held, result.Instance{ID: in.ID, Name: in.Name, Platform: in.Platform, Outcome: result.OutcomeCancelled,
			Error: "not patched: its backup failed: " + r.Reason})
	}
	return ready, held, rows, nil
}

// exportFindings sends the phase's failed and non-compliant instances and
// its remaining fixable CVEs at or above the threshold to Security Hub.
func (t *target) exportFindings(ctx context.Context, st *policy.Stage, rp *result.Phase) {
	if !t.plan.Notify.SecurityHub || t.e.opt.DryRun || t.c.SecurityHub == nil {
		return
	}
	var items []securityhub.Item
	for _, w := range rp.Waves {
		for _, in := range w.Instances {
			switch in.Outcome {
			case result.OutcomeFailed, result.OutcomeTimedOut, result.OutcomeInconclusive:
				items = append(items, securityhub.Item{Kind: securityhub.KindInstance, InstanceID: in.ID, Severity: "HIGH", Reason: "patch install " + string(in.Outcome) + ": " + in.Error})
			}
		}
	}
	if v := rp.Verification; v != nil {
		if c := v.Compliance; c != nil {
			for _, nc := range c.NonCompliant {
				items = append(items, securityhub.Item{Kind: securityhub.KindInstance, InstanceID: nc.InstanceID, Severity: "MEDIUM", Reason: nc.Reason})
			}
		}
		if in := v.Inspector; in != nil {
			for _, f := range append(append([]result.Finding(nil), in.Remaining...), in.New...) {
				if f.FixAvailable && st.Inspector.Enabled && atLeast(f.Severity, st.Inspector.FailOnSeverity) {
					items = append(items, securityhub.Item{Kind: securityhub.KindCVE, InstanceID: f.InstanceID, CVE: f.CVE, Package: f.Package, Severity: asff(f.Severity), Reason: f.CVE + " is still open"})
				}
			}
		}
	}
	res, err := t.c.SecurityHub.Export(ctx, securityhub.Export{Policy: t.plan.Policy, Account: t.c.AccountID, Region: t.region, Phase: st.Name,
		RunURL: t.e.opt.RunURL, At: t.e.opt.Clock.Now(), Items: items})
	var why *result.Reason
	switch {
	case err != nil:
		why = &result.Reason{Code: "security-hub", Message: "findings not exported to Security Hub: " + err.Error()}
	case len(res.Failed) > 0:
		why = &result.Reason{Code: "security-hub", Message: fmt.Sprintf("Security Hub refused %d findings, e.g. %s", len(res.Failed), res.Failed[0])}
	}
	if why != nil {
		t.e.mu.Lock()
		rp.Reasons = append(rp.Reasons, *why)
		t.e.mu.Unlock()
	}
}

// severityRank is Inspector's order, 0 for UNTRIAGED and for a severity
// Inspector does not define.
func severityRank(sev string) int {
	r, _ := result.SeverityRank(sev)
	return r
}

func atLeast(sev, threshold string) bool {
	return severityRank(sev) >= severityRank(threshold) && severityRank(sev) > 0
}

// asff maps Inspector's severity onto an ASFF label (UNTRIAGED has none).
func asff(sev string) string {
	if severityRank(sev) == 0 {
		return "INFORMATIONAL"
	}
	return sev
}

// soak waits out a phase's soak before the next phase. With a health gate
// it watches the alarms of every account-region where the phase passed,
// on the gate's interval: an alarm entering ALARM fails that phase there
// (and so halts the next phase everywhere) and ends the soak. A
// cancellation is returned as an error.
func (pr *policyRun) soak(ctx context.Context, here []*slot, st *policy.Stage, d time.Duration) error {
	if st.Health == nil {
		return pr.e.opt.Clock.Sleep(ctx, d)
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var mu sync.Mutex
	var breaches []func()
	var wg sync.WaitGroup
	for _, s := range here {
		if s.t == nil || s.t.healthBase == nil || s.res.Phases[len(s.res.Phases)-1].Status != result.StatusPassed {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.t.c.Health.Soak(sctx, *st.Health, *s.t.healthBase, st.Name, d)
			if err == nil || ctx.Err() != nil || sctx.Err() != nil && !isBreach(err) {
				return
			}
			code, msg := "health", "health gate: "+err.Error()
			if isBreach(err) {
				code, msg = "health-alarm", err.Error()
			}
			mu.Lock()
			breaches = append(breaches, func() {
				last := &s.res.Phases[len(s.res.Phases)-1]
				fail(last, result.StatusFailed, code, msg)
			})
			mu.Unlock()
			stop() // the phase failed somewhere: the next one will not start
		}()
	}
	wg.Wait()
	if len(breaches) > 0 {
		pr.locked(func() {
			for _, b := range breaches {
				b()
			}
		})
		return nil
	}
	return ctx.Err()
}

func isBreach(err error) bool {
	var b *health.Breach
	return errors.As(err, &b)
}

// NotifierConnect reaches a policy's SNS topic; ledger keeps each event
// once per run.
type NotifierConnect func(ctx context.Context, topic string, ledger notify.Ledger) (*notify.Notifier, error)

// paramLedger keeps which notifications a run sent in Parameter Store, so
// a rerun of the same run (a resumed job) does not send them again: a
// parameter created without Overwrite can exist only once.
type paramLedger struct {
	params lock.ParameterStore
	prefix string
}

func (l paramLedger) name(key string) string {
	sum := sha256.Sum256([]byte(key))
	return l.prefix + hex.EncodeToString(sum[:8])
}

func (l paramLedger) Seen(ctx context.Context, key string) (bool, error) {
	_, err := l.params.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(l.name(key))})
	var nf *ssmtypes.ParameterNotFound
	switch {
	case errors.As(err, &nf):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("reading notification record %s with ssm:GetParameter: %w", l.name(key), err)
	}
	return true, nil
}

func (l paramLedger) Record(ctx context.Context, key string) error {
	_, err := l.params.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(l.name(key)), Type: ssmtypes.ParameterTypeString,
		Value: aws.String(key), Description: aws.String("patchgate sent this notification")})
	var exists *ssmtypes.ParameterAlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("recording notification %s with ssm:PutParameter: %w", l.name(key), err)
	}
	return nil
}

// notifier is the policy's SNS notifier, its ledger in the first
// account-region's Parameter Store; nil without reporting.sns.
func (pr *policyRun) notifier(ctx context.Context, slots []*slot) *notify.Notifier {
	topic := pr.plan.Notify.SNSTopic
	if topic == "" || pr.e.opt.DryRun || pr.e.opt.Notifier == nil {
		return nil
	}
	var params lock.ParameterStore
	for _, s := range slots {
		if s.t != nil {
			params = s.t.c.Params
			break
		}
	}
	var ledger notify.Ledger
	if params != nil {
		ledger = paramLedger{params: params, prefix: "/patchgate/notify/" + pr.p.Metadata.Name + "/"}
	}
	n, err := pr.e.opt.Notifier(ctx, topic, ledger)
	if err != nil {
		pr.e.opt.Logger.Warn("no SNS notifications for this policy", "policy", pr.p.Metadata.Name, "err", err)
		return nil
	}
	return n
}

// notify sends an event, best effort: a notification that cannot be sent
// is logged and noted, never the reason a patch run stops.
func (pr *policyRun) notify(ctx context.Context, e notify.Event) {
	if pr.sns == nil {
		return
	}
	e.Policy, e.RunID, e.RunURL = pr.p.Metadata.Name, pr.e.opt.RunID, pr.e.opt.RunURL
	if _, err := pr.sns.Notify(context.WithoutCancel(ctx), e); err != nil {
		pr.e.opt.Logger.Warn("an SNS notification was not sent", "policy", e.Policy, "event", e.Kind, "err", err)
		pr.e.mu.Lock()
		pr.e.run.Errors = append(pr.e.run.Errors, fmt.Sprintf("%s: the %s notification was not sent: %v", e.Policy, e.Kind, err))
		pr.e.mu.Unlock()
	}
}

// sweep deletes this policy's snapshots older than install.backup's
// retention in every account-region it ran in (only patchgate's, never
// this run's), best effort.
func (pr *policyRun) sweep(ctx context.Context, slots []*slot) {
	bp := pr.plan.Backup
	if bp == nil || pr.e.opt.DryRun {
		return
	}
	for _, s := range slots {
		if s.t == nil || s.t.c.Backups == nil {
			continue
		}
		if _, err := s.t.c.Backups.Sweep(context.WithoutCancel(ctx), pr.p.Metadata.Name, pr.e.opt.RunID, bp.RetainDays); err != nil {
			s.res.Reason = strings.TrimSpace(s.res.Reason + "; old snapshots not swept: " + err.Error())
		}
	}
}

// restoreCommands fills, for each instance of a wave that failed to patch,
// the commands that restore it from the snapshots taken before.
func restoreCommands(region string, w *result.Wave) {
	failed := map[string]bool{}
	for _, in := range w.Instances {
		if in.Outcome == result.OutcomeFailed || in.Outcome == result.OutcomeTimedOut {
			failed[in.ID] = true
		}
	}
	for i := range w.Backups {
		b := &w.Backups[i]
		if !failed[b.InstanceID] || b.Reason != "" {
			continue
		}
		r := backup.Result{InstanceID: b.InstanceID}
		for j, id := range b.Snapshots {
			vol := ""
			if j < len(b.Volumes) {
				vol = b.Volumes[j]
			}
			r.Snapshots = append(r.Snapshots, backup.Snapshot{ID: id, VolumeID: vol})
		}
		b.Restore = backup.RestoreCommands(region, "", r)
	}
}
