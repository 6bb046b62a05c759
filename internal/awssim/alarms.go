package awssim

import (
	"sort"
	"strconv"
	"strings"
	"time"

	smithycbor "github.com/aws/smithy-go/encoding/cbor"
)

// SetAlarm changes an alarm's state now (creating the alarm if the
// scenario lacks it), as CloudWatch's SetAlarmState would.
func (s *Sim) SetAlarm(account, region, name, state, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	for _, a := range s.safety.alarms {
		if a.spec.Account == account && a.spec.Region == region && a.spec.Name == name {
			a.set = append(a.set, alarmChangeAt{at: now, state: state, reason: reason})
			return
		}
	}
	s.safety.alarms = append(s.safety.alarms, &alarmState{spec: AlarmSpec{Account: account, Region: region, Name: name, Type: "MetricAlarm", State: "OK"},
		start: now, arn: "arn:aws:cloudwatch:" + region + ":" + account + ":alarm:" + name, set: []alarmChangeAt{{at: now, state: state, reason: reason}}})
}

// at is the alarm's state and reason at now, when either last changed
// (StateUpdatedTimestamp) and when the state last changed
// (StateTransitionedTimestamp).
func (a *alarmState) at(now time.Time) (state, reason string, updated, transitioned time.Time) {
	state, reason, updated = a.spec.State, a.spec.Reason, a.start.Add(-time.Hour)
	transitioned = updated
	if reason == "" {
		reason = "Threshold Crossed: no datapoints were breaching the threshold"
	}
	changes := make([]alarmChangeAt, 0, len(a.spec.Changes)+len(a.set))
	for _, c := range a.spec.Changes {
		changes = append(changes, alarmChangeAt{at: a.start.Add(c.After), state: c.State, reason: c.Reason})
	}
	changes = append(changes, a.set...)
	sort.SliceStable(changes, func(i, j int) bool { return changes[i].at.Before(changes[j].at) })
	for _, c := range changes {
		if c.at.After(now) {
			break
		}
		if c.state != state {
			state, transitioned, updated = c.state, c.at, c.at
		} else if c.reason != reason {
			updated = c.at
		}
		reason = c.reason
	}
	return state, reason, updated, transitioned
}

// describeAlarms answers CloudWatch DescribeAlarms as documented: at most
// 100 AlarmNames, AlarmNamePrefix not with AlarmNames, only metric alarms
// unless AlarmTypes asks for others, MaxRecords 1..100 (default 50).
func (s *Sim) describeAlarms(in smithycbor.Map, account, region string) (smithycbor.Map, *apiError) {
	var names []string
	if l, ok := in["AlarmNames"].(smithycbor.List); ok {
		for _, v := range l {
			if n, ok := v.(smithycbor.String); ok {
				names = append(names, string(n))
			}
		}
	}
	prefix, hasPrefix := in["AlarmNamePrefix"].(smithycbor.String)
	types := map[string]bool{}
	if l, ok := in["AlarmTypes"].(smithycbor.List); ok {
		for _, v := range l {
			if t, ok := v.(smithycbor.String); ok {
				types[string(t)] = true
			}
		}
	}
	if len(types) == 0 {
		types["MetricAlarm"] = true
	}
	max := 50
	if m, ok := in["MaxRecords"].(smithycbor.Uint); ok {
		max = int(m)
	}
	switch {
	case len(names) > 100:
		return nil, &apiError{Code: "InvalidParameterValue", Message: "The collection AlarmNames must not have more than 100 entries.", Status: 400}
	case hasPrefix && len(names) > 0:
		return nil, &apiError{Code: "InvalidParameterCombination", Message: "AlarmNamePrefix and AlarmNames cannot be used together.", Status: 400}
	case max < 1 || max > 100:
		return nil, &apiError{Code: "InvalidParameterValue", Message: "MaxRecords must be between 1 and 100.", Status: 400}
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	var match []*alarmState
	for _, a := range s.safety.alarms {
		if a.spec.Account != account || a.spec.Region != region || !types[a.spec.Type] {
			continue
		}
		if len(want) > 0 && !want[a.spec.Name] || hasPrefix && !strings.HasPrefix(a.spec.Name, string(prefix)) {
			continue
		}
		match = append(match, a)
	}
	sort.Slice(match, func(i, j int) bool { return match[i].spec.Name < match[j].spec.Name })
	start := 0
	if t, ok := in["NextToken"].(smithycbor.String); ok {
		start = tokenIndex(string(t))
	}
	out := smithycbor.Map{}
	lists := map[string]smithycbor.List{"MetricAlarm": {}, "CompositeAlarm": {}, "LogAlarm": {}}
	i := start
	for ; i < len(match) && i < start+max; i++ {
		a := match[i]
		state, reason, updated, transitioned := a.at(now)
		lists[a.spec.Type] = append(lists[a.spec.Type], smithycbor.Map{
			"AlarmName": smithycbor.String(a.spec.Name), "AlarmArn": smithycbor.String(a.arn),
			"StateValue": smithycbor.String(state), "StateReason": smithycbor.String(reason),
			"StateUpdatedTimestamp":      &smithycbor.Tag{ID: 1, Value: smithycbor.Float64(epoch(updated))},
			"StateTransitionedTimestamp": &smithycbor.Tag{ID: 1, Value: smithycbor.Float64(epoch(transitioned))},
			"ActionsEnabled":             smithycbor.Bool(true),
		})
	}
	out["MetricAlarms"] = lists["MetricAlarm"]
	out["CompositeAlarms"] = lists["CompositeAlarm"]
	out["LogAlarms"] = lists["LogAlarm"]
	if i < len(match) {
		out["NextToken"] = smithycbor.String(strconv.Itoa(i))
	}
	return out, nil
}
