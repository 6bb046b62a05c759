// Package health is the application-health gate: CloudWatch alarms a
// policy lists (verify.health) are read before a phase, after each wave and
// through the soak; an alarm that enters ALARM fails the phase.
//
// Reading is DescribeAlarms (names in batches of 100, one paginated call
// per prefix, metric, composite and log alarms alike); judging is pure
// (Start, Entered), so the engine and its tests decide the same way.
package health

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/oneline"
	"github.com/patchgate/patchgate/internal/policy"
)

// CloudWatch is the part of the CloudWatch API the gate uses.
type CloudWatch interface {
	DescribeAlarms(ctx context.Context, in *cloudwatch.DescribeAlarmsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error)
}

// StateAlarm is CloudWatch's ALARM state.
const StateAlarm = "ALARM"

// Alarm is one alarm's state when read.
type Alarm struct {
	Name   string    `json:"name"`
	Type   string    `json:"type"` // MetricAlarm, CompositeAlarm, LogAlarm
	State  string    `json:"state"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"` // when the state last changed
}

// Reading is every listed alarm's state at one time.
type Reading struct {
	At     time.Time        `json:"at"`
	Alarms map[string]Alarm `json:"alarms"`
	// Missing are exact names no alarm has, and prefixes no alarm starts
	// with ("web-*"): the gate cannot vouch for what it cannot see.
	Missing []string `json:"missing,omitempty"`
}

// Firing returns the alarms in ALARM, by name.
func (r Reading) Firing() []Alarm {
	var out []Alarm
	for _, a := range r.Alarms {
		if a.State == StateAlarm {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Breach is a failed health gate: the error the engine stops on.
type Breach struct {
	When    string  // "before staging", "after staging wave 2", "during staging's soak"
	Alarms  []Alarm // the alarms in ALARM that decide it
	Missing []string
}

func (b *Breach) Error() string {
	var parts []string
	for _, a := range b.Alarms {
		parts = append(parts, fmt.Sprintf("alarm %q is in ALARM since %s: %s", oneline.Clean(a.Name, 255), a.Since.UTC().Format(time.RFC3339), oneline.Clean(a.Reason, 300)))
	}
	if len(b.Missing) > 0 {
		quoted := make([]string, len(b.Missing))
		for i, m := range b.Missing {
			quoted[i] = fmt.Sprintf("%q", oneline.Clean(m, 255))
		}
		parts = append(parts, "no alarm matches "+strings.Join(quoted, ", ")+" (check verify.health.alarms and cloudwatch:DescribeAlarms access in this account and region)")
	}
	return "health gate " + b.When + ": " + strings.Join(parts, "; ")
}

// allTypes: DescribeAlarms returns only metric alarms unless asked.
var allTypes = []cwtypes.AlarmType{cwtypes.AlarmTypeMetricAlarm, cwtypes.AlarmTypeCompositeAlarm, cwtypes.AlarmTypeLogAlarm}

// Reader reads a gate's alarms.
type Reader struct {
	CW    CloudWatch
	Clock clock.Clock // nil: the wall clock
}

func (r *Reader) clock() clock.Clock {
	if r.Clock == nil {
		return clock.Real{}
	}
	return r.Clock
}

// Read reads every alarm the gate names or whose name starts with one of
// its prefixes.
func (r *Reader) Read(ctx context.Context, g policy.HealthGate) (Reading, error) {
	rd := Reading{At: r.clock().Now(), Alarms: map[string]Alarm{}}
	add := func(out *cloudwatch.DescribeAlarmsOutput) {
		for _, a := range out.MetricAlarms {
			rd.Alarms[aws.ToString(a.AlarmName)] = alarm(a.AlarmName, "MetricAlarm", a.StateValue, a.StateReason, a.StateUpdatedTimestamp, a.StateTransitionedTimestamp)
		}
		for _, a := range out.CompositeAlarms {
			rd.Alarms[aws.ToString(a.AlarmName)] = alarm(a.AlarmName, "CompositeAlarm", a.StateValue, a.StateReason, a.StateUpdatedTimestamp, a.StateTransitionedTimestamp)
		}
		for _, a := range out.LogAlarms {
			rd.Alarms[aws.ToString(a.AlarmName)] = alarm(a.AlarmName, "LogAlarm", a.StateValue, a.StateReason, a.StateUpdatedTimestamp, a.StateTransitionedTimestamp)
		}
	}
	pages := func(in *cloudwatch.DescribeAlarmsInput, what string) error {
		p := cloudwatch.NewDescribeAlarmsPaginator(r.CW, in)
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("cloudwatch:DescribeAlarms (%s): %w", what, err)
			}
			add(out)
		}
		return nil
	}
	for i := 0; i < len(g.Names); i += 100 {
		batch := g.Names[i:min(i+100, len(g.Names))]
		if err := pages(&cloudwatch.DescribeAlarmsInput{AlarmNames: batch, AlarmTypes: allTypes, MaxRecords: aws.Int32(100)}, fmt.Sprintf("%d names", len(batch))); err != nil {
			return Reading{}, err
		}
	}
	for _, p := range g.Prefixes {
		if err := pages(&cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String(p), AlarmTypes: allTypes, MaxRecords: aws.Int32(100)}, "prefix "+p); err != nil {
			return Reading{}, err
		}
		if !anyPrefix(rd.Alarms, p) {
			rd.Missing = append(rd.Missing, p+"*")
		}
	}
	for _, n := range g.Names {
		if _, ok := rd.Alarms[n]; !ok {
			rd.Missing = append(rd.Missing, n)
		}
	}
	sort.Strings(rd.Missing)
	return rd, nil
}

func anyPrefix(m map[string]Alarm, p string) bool {
	for n := range m {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}

func alarm(name *string, typ string, state cwtypes.StateValue, reason *string, updated, transitioned *time.Time) Alarm {
	a := Alarm{Name: aws.ToString(name), Type: typ, State: string(state), Reason: aws.ToString(reason)}
	// StateTransitionedTimestamp is when the state last changed;
	// StateUpdatedTimestamp also moves when only the reason does. Older
	// implementations send only the latter.
	switch {
	case transitioned != nil && !transitioned.IsZero():
		a.Since = *transitioned
	case updated != nil:
		a.Since = *updated
	}
	return a
}

// Start judges a reading taken before a phase sends anything: an alarm in
// ALARM refuses the phase unless the gate allows alarms at start, and so
// does a listed alarm that does not exist. nil means the phase may start.
func Start(g policy.HealthGate, phase string, rd Reading) error {
	b := &Breach{When: "before " + phase, Missing: rd.Missing}
	if !g.AllowAlarmAtStart {
		b.Alarms = rd.Firing()
	}
	if len(b.Alarms) == 0 && len(b.Missing) == 0 {
		return nil
	}
	return b
}

// Entered returns the alarms that entered ALARM after the baseline: in
// ALARM now, and not in ALARM at the baseline or in ALARM again since (a
// later state change). An alarm the baseline did not have (a new alarm
// under a prefix) counts when it is in ALARM.
func Entered(baseline, now Reading) []Alarm {
	var out []Alarm
	for _, a := range now.Firing() {
		b, ok := baseline.Alarms[a.Name]
		if !ok || b.State != StateAlarm || a.Since.After(b.Since) {
			out = append(out, a)
		}
	}
	return out
}

// Check reads the gate's alarms and fails (a *Breach) when one entered
// ALARM since the baseline or a listed alarm has disappeared. when says
// where in the rollout ("after staging wave 1").
func (r *Reader) Check(ctx context.Context, g policy.HealthGate, baseline Reading, when string) (Reading, error) {
	rd, err := r.Read(ctx, g)
	if err != nil {
		return Reading{}, err
	}
	if entered := Entered(baseline, rd); len(entered) > 0 || len(rd.Missing) > 0 {
		return rd, &Breach{When: when, Alarms: entered, Missing: rd.Missing}
	}
	return rd, nil
}

// Soak watches the gate's alarms for d after the phase's last wave,
// reading them every g.PollInterval (and once at the end), and returns the
// first breach. A read that fails is an error: a soak that could not watch
// is not a passed soak.
func (r *Reader) Soak(ctx context.Context, g policy.HealthGate, baseline Reading, phase string, d time.Duration) error {
	poll := g.PollInterval
	if poll <= 0 {
		poll = policy.DefaultHealthPoll
	}
	end := r.clock().Now().Add(d)
	for {
		if _, err := r.Check(ctx, g, baseline, "during "+phase+"'s soak"); err != nil {
			return err
		}
		left := end.Sub(r.clock().Now())
		if left <= 0 {
			return nil
		}
		if err := r.clock().Sleep(ctx, min(poll, left)); err != nil {
			return fmt.Errorf("health gate: %s's soak cut short: %w", phase, err)
		}
	}
}
