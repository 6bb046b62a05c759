package awssim

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

var (
	concurrencyRe = regexp.MustCompile(`^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$`)
	maxErrorsRe   = regexp.MustCompile(`^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$`)
)

type filter struct {
	Key    string
	Values []string
}

type parameter struct {
	Name, Value, Type string
	Version           int64
	Modified          time.Time
}

// ssmCall is one SSM request as its handler sees it.
type ssmCall struct {
	k               regionKey
	account, region string
	now             time.Time
	body            []byte
}

// ssmOps maps an X-Amz-Target operation to its handler. Handlers run with
// s.mu held.
var ssmOps = map[string]func(*Sim, ssmCall) (any, error){
	"DescribeInstanceInformation": (*Sim).ssmDescribeInstanceInformation,
	"SendCommand":                 (*Sim).ssmSendCommand,
	"ListCommands":                (*Sim).ssmListCommands,
	"ListCommandInvocations":      (*Sim).ssmListCommandInvocations,
	"GetCommandInvocation":        (*Sim).ssmGetCommandInvocation,
	"CancelCommand":               (*Sim).ssmCancelCommand,
	"DescribeInstancePatchStates": (*Sim).ssmDescribeInstancePatchStates,
	"GetCalendarState":            (*Sim).ssmGetCalendarState,
	"PutParameter":                (*Sim).ssmPutParameter,
	"GetParameter":                (*Sim).ssmGetParameter,
	"DeleteParameter":             (*Sim).ssmDeleteParameter,
}

// ssm dispatches one SSM operation. The caller holds no lock.
func (s *Sim) ssm(op, account, region string, body []byte) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := ssmCall{k: regionKey{account, region}, account: account, region: region, now: s.clock.Now(), body: body}
	s.otherCommands(q.k, q.now)
	if h, ok := ssmOps[op]; ok {
		return h(s, q)
	}
	if out, ok, err := s.ssmExtra(op, q.k, q.now, body); ok {
		return out, err
	}
	return nil, &apiError{Code: "UnknownOperationException", Message: "awssim does not implement AmazonSSM." + op, Status: 400}
}

func (s *Sim) ssmDescribeInstanceInformation(q ssmCall) (any, error) {
	k, now, body := q.k, q.now, q.body
	var in struct {
		Filters    []filter
		MaxResults *int
		NextToken  string
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, validation("%v", err)
	}
	max := 50
	if in.MaxResults != nil {
		if *in.MaxResults < 5 || *in.MaxResults > 50 {
			return nil, validation("1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 5 and 50", *in.MaxResults)
		}
		max = *in.MaxResults
	}
	hasTag, hasOther := false, false
	for _, f := range in.Filters {
		if strings.HasPrefix(f.Key, "tag:") {
			hasTag = true
		} else {
			hasOther = true
		}
	}
	if hasTag && hasOther {
		return nil, &apiError{Code: "InvalidFilterKey", Message: "tag filters cannot be combined with other filter keys", Status: 400}
	}
	// The token is the fleet index to resume scanning from, so a full
	// pagination is one pass over the fleet, however large.
	fleet := s.fleet[k]
	list := []map[string]any{}
	i := tokenIndex(in.NextToken)
	for ; i < len(fleet) && len(list) < max; i++ {
		inst := fleet[i]
		if !matchInstance(inst, in.Filters) {
			continue
		}
		list = append(list, map[string]any{"InstanceId": inst.ID, "PingStatus": inst.Ping, "PlatformName": inst.Platform,
			"PlatformType": platformType(inst.Platform), "ComputerName": inst.Name + ".internal", "ResourceType": "EC2Instance",
			"LastPingDateTime": epoch(now)})
	}
	for i < len(fleet) && !matchInstance(fleet[i], in.Filters) {
		i++
	}
	out := map[string]any{"InstanceInformationList": list}
	if i < len(fleet) {
		out["NextToken"] = strconv.Itoa(i)
	}
	return out, nil
}

func (s *Sim) ssmSendCommand(q ssmCall) (any, error) {
	k, now, account, region, body := q.k, q.now, q.account, q.region, q.body
	var in struct {
		DocumentName   string
		InstanceIds    []string
		Targets        []filter
		Parameters     map[string][]string
		Comment        string
		MaxConcurrency string
		MaxErrors      string
		TimeoutSeconds int
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, validation("%v", err)
	}
	switch {
	case in.DocumentName == "":
		return nil, validation("DocumentName is required")
	case len(in.InstanceIds) > 50:
		return nil, validation("1 validation error detected: Value at 'instanceIds' failed to satisfy constraint: Member must have length less than or equal to 50")
	case len(in.Targets) > 5:
		return nil, validation("1 validation error detected: Value at 'targets' failed to satisfy constraint: Member must have length less than or equal to 5")
	case len(in.Comment) > 100:
		return nil, validation("1 validation error detected: Value at 'comment' failed to satisfy constraint: Member must have length less than or equal to 100")
	case in.MaxConcurrency != "" && !concurrencyRe.MatchString(in.MaxConcurrency):
		return nil, validation("Value '%s' at 'maxConcurrency' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([1-9][0-9]*|[1-9][0-9]%%|[1-9]%%|100%%)$", in.MaxConcurrency)
	case in.MaxErrors != "" && !maxErrorsRe.MatchString(in.MaxErrors):
		return nil, validation("Value '%s' at 'maxErrors' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([1-9][0-9]*|[0]|[1-9][0-9]%%|[0-9]%%|100%%)$", in.MaxErrors)
	case len(in.InstanceIds) == 0 && len(in.Targets) == 0:
		return nil, validation("either InstanceIds or Targets is required")
	}
	if in.DocumentName != "AWS-RunPatchBaseline" && in.DocumentName != HooksDocument {
		return nil, &apiError{Code: "InvalidDocument", Message: "awssim only runs AWS-RunPatchBaseline", Status: 400}
	}
	var targets []*Instance
	if len(in.InstanceIds) > 0 {
		for _, id := range in.InstanceIds {
			inst := s.byID[id]
			if inst == nil || inst.Account != account || inst.Region != region {
				return nil, &apiError{Code: "InvalidInstanceId", Message: "Instances [" + id + "] not in a valid state for account " + account, Status: 400}
			}
			targets = append(targets, inst)
		}
	} else {
		var fs []filter
		for _, t := range in.Targets {
			fs = append(fs, filter{Key: t.Key, Values: t.Values})
		}
		for _, inst := range s.fleet[k] {
			if matchInstance(inst, fs) {
				targets = append(targets, inst)
			}
		}
	}
	if in.TimeoutSeconds == 0 {
		in.TimeoutSeconds = 3600
	}
	if in.MaxConcurrency == "" {
		in.MaxConcurrency = "50"
	}
	if in.MaxErrors == "" {
		in.MaxErrors = "0"
	}
	s.nextCmd++
	c := &command{id: fmt.Sprintf("%08x-sim0-4000-8000-%012x", s.nextCmd, s.nextCmd), comment: in.Comment, doc: in.DocumentName,
		params: in.Parameters, maxConcurrency: in.MaxConcurrency, maxErrors: in.MaxErrors, timeout: time.Duration(in.TimeoutSeconds) * time.Second,
		requested: now, instanceIDs: in.InstanceIds}
	c.schedule(targets, s.sc.PatchDuration, now)
	s.commands[k] = append(s.commands[k], c)
	s.cmdByID[c.id] = c
	ids := make([]string, len(targets))
	for i, t := range targets {
		ids[i] = t.ID
	}
	s.sends = append(s.sends, SendRecord{Account: account, Region: region, CommandID: c.id, Comment: c.comment, InstanceIDs: ids, Parameters: in.Parameters, At: now})
	return map[string]any{"Command": c.view(now)}, nil
}

func (s *Sim) ssmListCommands(q ssmCall) (any, error) {
	k, now, body := q.k, q.now, q.body
	var in struct {
		CommandId  string
		InstanceId string
		Filters    []struct{ Key, Value string }
		MaxResults *int
		NextToken  string
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, validation("%v", err)
	}
	max, err := pageSize(in.MaxResults)
	if err != nil {
		return nil, err
	}
	var list []*command
	for _, c := range s.commands[k] {
		if in.CommandId != "" && c.id != in.CommandId {
			continue
		}
		if !s.listed(c, now) || in.InstanceId != "" && !c.targets(in.InstanceId) {
			continue
		}
		ok, err := c.matches(in.Filters, now)
		if err != nil {
			return nil, err
		}
		if ok {
			list = append(list, c)
		}
	}
	if in.CommandId != "" && len(list) == 0 {
		return nil, &apiError{Code: "InvalidCommandId", Message: "command " + in.CommandId + " not found", Status: 400}
	}
	// Newest first, as SSM lists them.
	sort.SliceStable(list, func(i, j int) bool { return list[i].requested.After(list[j].requested) })
	start := tokenIndex(in.NextToken)
	end := min(start+max, len(list))
	views := []map[string]any{}
	for _, c := range list[min(start, len(list)):end] {
		views = append(views, c.view(now))
	}
	out := map[string]any{"Commands": views}
	if end < len(list) {
		out["NextToken"] = strconv.Itoa(end)
	}
	return out, nil
}

func (s *Sim) ssmListCommandInvocations(q ssmCall) (any, error) {
	k, now, body := q.k, q.now, q.body
	var in struct {
		CommandId  string
		InstanceId string
		Filters    []struct{ Key, Value string }
		Details    bool
		MaxResults *int
		NextToken  string
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, validation("%v", err)
	}
	max, err := pageSize(in.MaxResults)
	if err != nil {
		return nil, err
	}
	var invs []*invocation
	if in.CommandId != "" {
		c := s.findCommand(k, in.CommandId)
		if c == nil || !s.listed(c, now) {
			return nil, &apiError{Code: "InvalidCommandId", Message: "command " + in.CommandId + " not found", Status: 400}
		}
		invs = c.invs
	} else {
		// Every listed command's invocations, newest command first.
		cmds := slices.Clone(s.commands[k])
		sort.SliceStable(cmds, func(i, j int) bool { return cmds[i].requested.After(cmds[j].requested) })
		for _, c := range cmds {
			if !s.listed(c, now) {
				continue
			}
			ok, err := c.matches(in.Filters, now)
			if err != nil {
				return nil, err
			}
			if ok {
				invs = append(invs, c.invs...)
			}
		}
	}
	if in.InstanceId != "" {
		var mine []*invocation
		for _, inv := range invs {
			if inv.instance.ID == in.InstanceId {
				mine = append(mine, inv)
			}
		}
		invs = mine
	}
	start := tokenIndex(in.NextToken)
	end := min(start+max, len(invs))
	views := []map[string]any{}
	for _, inv := range invs[min(start, len(invs)):end] {
		views = append(views, inv.view(inv.cmd, now, in.Details))
	}
	out := map[string]any{"CommandInvocations": views}
	if end < len(invs) {
		out["NextToken"] = strconv.Itoa(end)
	}
	return out, nil
}

func (s *Sim) ssmGetCommandInvocation(q ssmCall) (any, error) {
	k, now, body := q.k, q.now, q.body
	var in struct{ CommandId, InstanceId, PluginName string }
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, validation("%v", err)
	}
	c := s.findCommand(k, in.CommandId)
	if c == nil || now.Sub(c.requested) < s.sc.InvocationDelay {
		return nil, &apiError{Code: "InvocationDoesNotExist", Message: "", Status: 400}
	}
	for _, inv := range c.invs {
		if inv.instance.ID == in.InstanceId {
			st, det := inv.state(c, now)
			out := map[string]any{"CommandId": c.id, "InstanceId": in.InstanceId, "DocumentName": c.doc, "Comment": c.comment,
				"Status": st, "StatusDetails": det, "PluginName": "PatchLinux", "ResponseCode": inv.responseCode(st),
				"StandardOutputContent": truncate(inv.output(st), 24000), "StandardErrorContent": ""}
			return out, nil
		}
	}
	return nil, &apiError{Code: "InvocationDoesNotExist", Message: "", Status: 400}
}

func (s *Sim) ssmCancelCommand(q ssmCall) (any, error) {
	k, now, body := q.k, q.now, q.body
	var in struct {
		CommandId   string
		InstanceIds []string
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, validation("%v", err)
	}
	c := s.findCommand(k, in.CommandId)
	if c == nil {
		return nil, &apiError{Code: "InvalidCommandId", Message: "command " + in.CommandId + " not found", Status: 400}
	}
	c.cancel(now, in.InstanceIds)
	return map[string]any{}, nil
}

func (s *Sim) ssmDescribeInstancePatchStates(q ssmCall) (any, error) {
	now, account, region, body := q.now, q.account, q.region, q.body
	var in struct {
		InstanceIds []string
		MaxResults  *int
		NextToken   string
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, validation("%v", err)
	}
	if len(in.InstanceIds) == 0 || len(in.InstanceIds) > 50 {
		return nil, validation("1 validation error detected: Value at 'instanceIds' failed to satisfy constraint: Member must have length between 1 and 50")
	}
	states := []map[string]any{}
	for _, id := range in.InstanceIds {
		inst := s.byID[id]
		if inst == nil || inst.Account != account || inst.Region != region {
			continue
		}
		states = append(states, inst.patchState(now))
	}
	return map[string]any{"InstancePatchStates": states}, nil
}

func (s *Sim) ssmGetCalendarState(q ssmCall) (any, error) {
	now, body := q.now, q.body
	var in struct{ CalendarNames []string }
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, validation("%v", err)
	}
	state := "OPEN"
	for _, n := range in.CalendarNames {
		for _, closed := range s.sc.ClosedCalendars {
			if n == closed {
				state = "CLOSED"
			}
		}
	}
	return map[string]any{"State": state, "AtTime": now.UTC().Format(time.RFC3339)}, nil
}

func (s *Sim) ssmPutParameter(q ssmCall) (any, error) {
	k, now, body := q.k, q.now, q.body
	var in struct {
		Name, Value, Type string
		Overwrite         bool
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, validation("%v", err)
	}
	if in.Name == "" || in.Value == "" {
		return nil, validation("Name and Value are required")
	}
	ps := s.params[k]
	if ps == nil {
		ps = map[string]*parameter{}
		s.params[k] = ps
	}
	if p, ok := ps[in.Name]; ok {
		if !in.Overwrite {
			return nil, &apiError{Code: "ParameterAlreadyExists", Message: "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.", Status: 400}
		}
		p.Value, p.Version, p.Modified = in.Value, p.Version+1, now
		return map[string]any{"Version": p.Version, "Tier": "Standard"}, nil
	}
	if in.Type == "" {
		in.Type = "String"
	}
	ps[in.Name] = &parameter{Name: in.Name, Value: in.Value, Type: in.Type, Version: 1, Modified: now}
	return map[string]any{"Version": 1, "Tier": "Standard"}, nil
}

func (s *Sim) ssmGetParameter(q ssmCall) (any, error) {
	k, body := q.k, q.body
	var in struct{ Name string }
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, validation("%v", err)
	}
	p := s.params[k][in.Name]
	if p == nil {
		return nil, &apiError{Code: "ParameterNotFound", Message: "", Status: 400}
	}
	return map[string]any{"Parameter": map[string]any{"Name": p.Name, "Value": p.Value, "Type": p.Type, "Version": p.Version, "LastModifiedDate": epoch(p.Modified)}}, nil
}

func (s *Sim) ssmDeleteParameter(q ssmCall) (any, error) {
	k, body := q.k, q.body
	var in struct{ Name string }
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, validation("%v", err)
	}
	if s.params[k][in.Name] == nil {
		return nil, &apiError{Code: "ParameterNotFound", Message: "", Status: 400}
	}
	delete(s.params[k], in.Name)
	return map[string]any{}, nil
}

// extraSSM are further SSM operations, each file of the simulator adding its
// own (patch baselines, ...). Each returns ok=false for operations it does
// not serve. They run with s.mu held.
var extraSSM []func(s *Sim, op string, k regionKey, now time.Time, body []byte) (any, bool, error)

func (s *Sim) ssmExtra(op string, k regionKey, now time.Time, body []byte) (any, bool, error) {
	for _, f := range extraSSM {
		if out, ok, err := f(s, op, k, now, body); ok {
			return out, true, err
		}
	}
	return nil, false, nil
}

func (s *Sim) findCommand(k regionKey, id string) *command {
	// Indexed: a naive poller asks for one command per instance per poll.
	if c := s.cmdByID[id]; c != nil && slices.Contains(s.commands[k], c) {
		return c
	}
	return nil
}

// CommandSpan returns when a command was sent and when its last invocation
// ended (clock time): the simulated work it stood for. ok is false for an
// unknown command or one with an invocation that never ends by itself.
func (s *Sim) CommandSpan(id string) (sent, ended time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cmdByID[id]
	if c == nil {
		return time.Time{}, time.Time{}, false
	}
	for _, inv := range c.invs {
		end := inv.end
		if !inv.cancelledAt.IsZero() && (end.IsZero() || inv.cancelledAt.Before(end)) {
			end = inv.cancelledAt
		}
		if end.IsZero() {
			return c.requested, time.Time{}, false
		}
		if end.After(ended) {
			ended = end
		}
	}
	return c.requested, ended, true
}

func matchInstance(in *Instance, fs []filter) bool {
	for _, f := range fs {
		var v string
		switch {
		case strings.HasPrefix(f.Key, "tag:"):
			val, ok := in.Tags[strings.TrimPrefix(f.Key, "tag:")]
			if !ok {
				return false
			}
			v = val
		case f.Key == "InstanceIds":
			v = in.ID
		case f.Key == "PingStatus":
			v = in.Ping
		case f.Key == "PlatformTypes":
			v = platformType(in.Platform)
		default:
			return false
		}
		found := false
		for _, want := range f.Values {
			if want == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func platformType(p string) string {
	switch {
	case strings.Contains(p, "Windows"):
		return "Windows"
	case strings.Contains(p, "mac"):
		return "MacOS"
	}
	return "Linux"
}

func tokenIndex(tok string) int {
	n, err := strconv.Atoi(tok)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// targets reports whether the command has an invocation on instance id.
func (c *command) targets(id string) bool {
	for _, inv := range c.invs {
		if inv.instance.ID == id {
			return true
		}
	}
	return false
}

// matches applies ListCommands' and ListCommandInvocations' filters.
func (c *command) matches(filters []struct{ Key, Value string }, now time.Time) (bool, error) {
	ok := true
	for _, f := range filters {
		switch f.Key {
		case "InvokedAfter", "InvokedBefore":
			t, err := time.Parse(time.RFC3339, f.Value)
			if err != nil {
				return false, &apiError{Code: "InvalidFilterValue", Message: "invalid date " + f.Value, Status: 400}
			}
			if f.Key == "InvokedAfter" && c.requested.Before(t) || f.Key == "InvokedBefore" && c.requested.After(t) {
				ok = false
			}
		case "DocumentName":
			ok = ok && c.doc == f.Value
		case "Status":
			ok = ok && c.status(now) == f.Value
		default:
			return false, &apiError{Code: "InvalidFilterKey", Message: "unsupported filter key " + f.Key, Status: 400}
		}
	}
	return ok, nil
}

// pageSize reads a command listing's MaxResults: 1..50, default 50.
func pageSize(n *int) (int, error) {
	if n == nil {
		return 50, nil
	}
	if *n < 1 || *n > 50 {
		return 0, validation("Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 50", *n)
	}
	return *n, nil
}
