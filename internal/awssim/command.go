package awssim

import (
	"container/heap"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// command is one SendCommand and its invocations, scheduled the way SSM
// runs them: at most MaxConcurrency at a time, a new one starting as one
// ends, and no new starts once errors exceed MaxErrors.
type command struct {
	id, comment, doc string
	params           map[string][]string
	maxConcurrency   string
	maxErrors        string
	timeout          time.Duration
	requested        time.Time
	instanceIDs      []string
	invs             []*invocation
	cancelledAt      time.Time
	// override is the InstallOverrideList read at send time (patches.go);
	// overrideErr fails every invocation, as an unreadable list does.
	override    *overrideList
	overrideErr string
}

// invocation is one instance's copy of a command. Its course is fixed at
// send time (start, end, final state); cancellation cuts it short.
type invocation struct {
	cmd         *command
	instance    *Instance
	start, end  time.Time // end zero: never ends by itself (hang)
	final       string    // Success, Failed, TimedOut, Cancelled
	details     string    // StatusDetails when final
	notStarted  bool      // never started: MaxErrors reached first
	rebootAt    time.Time // reboot mid-run (still InProgress)
	cancelledAt time.Time
	hookFailed  bool // failed in its pre-install hook (hooks.go)
	delayed     bool // not delivered: Delayed until DeliveryTimedOut
}

// rebootIfNeeded reports whether the command may reboot its instances
// (RebootIfNeeded is AWS-RunPatchBaseline's default).
func rebootIfNeeded(params map[string][]string) bool {
	v := params["RebootOption"]
	return len(v) == 0 || v[0] != "NoReboot"
}

func parseLimit(v string, total int) int {
	if strings.HasSuffix(v, "%") {
		p, _ := strconv.Atoi(strings.TrimSuffix(v, "%"))
		n := total * p / 100
		return n
	}
	n, _ := strconv.Atoi(v)
	return n
}

type endHeap []time.Time

func (h endHeap) Len() int           { return len(h) }
func (h endHeap) Less(i, j int) bool { return h[i].Before(h[j]) }
func (h endHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *endHeap) Push(x any)        { *h = append(*h, x.(time.Time)) }
func (h *endHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// schedule lays out every invocation's course.
func (c *command) schedule(targets []*Instance, patch time.Duration, now time.Time) {
	conc := max(parseLimit(c.maxConcurrency, len(targets)), 1)
	maxErr := parseLimit(c.maxErrors, len(targets))
	never := now.Add(100 * 365 * 24 * time.Hour)
	slots := &endHeap{}
	var errTimes []time.Time
	if len(targets) > 0 {
		c.override, c.overrideErr = targets[0].sim.readOverride(c.params)
	}
	for _, t := range targets {
		inv := &invocation{instance: t, cmd: c}
		c.invs = append(c.invs, inv)
		start := now
		if slots.Len() >= conc {
			start = heap.Pop(slots).(time.Time)
		}
		// SSM stops starting invocations once errors exceed MaxErrors.
		errs := 0
		for _, et := range errTimes {
			if !et.After(start) {
				errs++
			}
		}
		if errs > maxErr {
			inv.notStarted, inv.start, inv.end = true, start, start
			inv.final, inv.details = "Cancelled", "Cancelled"
			heap.Push(slots, start)
			continue
		}
		inv.start = start
		d := patch
		var drawn course // the realistic model's course; zero without it
		if r := t.sim.real; r != nil {
			drawn = r.course(t.num, len(t.installs), t.Missing, rebootIfNeeded(c.params))
			// The slot is taken from now; the agent starts it later.
			inv.start, d = start.Add(drawn.delay), drawn.run
			if drawn.reboot > 0 && !t.NoRebootHappens {
				inv.rebootAt = inv.start.Add(d - drawn.reboot)
			} else {
				d -= drawn.reboot
			}
		}
		run := inv.start // when the agent starts running it
		switch t.Behavior {
		case "slow":
			d = 3 * d
		case "reboot":
			inv.rebootAt = run.Add(d / 2)
			d = d + d/4
		}
		switch {
		case t.Ping != "Online" || t.Behavior == "offline" || drawn.outcome == "DeliveryTimedOut":
			// Never delivered: DeliveryTimedOut after the delivery timeout.
			// Pending until the agent would have picked it up, then Delayed.
			inv.start, inv.delayed = start.Add(drawn.delay), drawn.outcome == "DeliveryTimedOut"
			inv.end, inv.final, inv.details = start.Add(c.timeout), "TimedOut", "DeliveryTimedOut"
		case t.Behavior == "hang":
			inv.end, inv.final, inv.details = time.Time{}, "", ""
		case c.preInstallHookFails(t):
			inv.end, inv.final, inv.details, inv.hookFailed = run.Add(d/10), "Failed", "Failed", true
			errTimes = append(errTimes, inv.end)
		case t.Behavior == "fail" || c.overrideErr != "" || drawn.outcome == "Failed":
			inv.end, inv.final, inv.details = run.Add(d), "Failed", "Failed"
			errTimes = append(errTimes, inv.end)
		case drawn.outcome == "ExecutionTimedOut":
			inv.end, inv.final, inv.details = run.Add(d), "TimedOut", "ExecutionTimedOut"
			errTimes = append(errTimes, inv.end)
		default:
			inv.end, inv.final, inv.details = run.Add(d), "Success", "Success"
		}
		if inv.end.IsZero() {
			heap.Push(slots, never)
		} else {
			heap.Push(slots, inv.end)
		}
		t.installs = append(t.installs, inv)
	}
}

// state is the invocation's Status and StatusDetails at now.
func (inv *invocation) state(c *command, now time.Time) (string, string) {
	if !inv.cancelledAt.IsZero() && !inv.cancelledAt.After(now) && (inv.end.IsZero() || inv.end.After(inv.cancelledAt)) {
		return "Cancelled", "Cancelled"
	}
	if inv.notStarted {
		if now.Before(inv.start) {
			return "Pending", "Pending"
		}
		return inv.final, inv.details
	}
	switch {
	case now.Before(inv.start):
		return "Pending", "Pending"
	case inv.end.IsZero() || now.Before(inv.end):
		if inv.delayed || inv.instance.Ping != "Online" || inv.instance.Behavior == "offline" {
			return "Delayed", "Delayed"
		}
		return "InProgress", "InProgress"
	}
	return inv.final, inv.details
}

// finishedAt is when the invocation reached its final state, if it has.
func (inv *invocation) finishedAt(c *command, now time.Time) (time.Time, bool) {
	st, _ := inv.state(c, now)
	switch st {
	case "Pending", "InProgress", "Delayed":
		return time.Time{}, false
	case "Cancelled":
		if !inv.cancelledAt.IsZero() {
			return inv.cancelledAt, true
		}
	}
	return inv.end, true
}

func (inv *invocation) responseCode(status string) int {
	switch status {
	case "Success":
		return 0
	case "Failed":
		return 1
	}
	return -1
}

func (inv *invocation) output(status string) string {
	in := inv.instance
	if inv.cmd.doc != "AWS-RunPatchBaseline" && inv.cmd.doc != HooksDocument {
		return "" // another tool's command (realsim.go)
	}
	if inv.hookFailed && status == "Failed" {
		return inv.hookOutput()
	}
	switch status {
	case "Success":
		return fmt.Sprintf("Patch baseline operation Install completed.\nInstalled %d patches; 0 missing; 0 failed.", in.Missing)
	case "Failed":
		return fmt.Sprintf("Downloading packages...\nError: Transaction check error: file /usr/lib64/libssl.so.3 conflicts between attempted installs\nPatch baseline operation Install failed on %s (exit code 1).", in.ID)
	}
	return ""
}

func (c *command) cancel(now time.Time, ids []string) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for _, inv := range c.invs {
		if len(ids) > 0 && !want[inv.instance.ID] {
			continue
		}
		if _, done := inv.finishedAt(c, now); !done && inv.cancelledAt.IsZero() {
			inv.cancelledAt = now
		}
	}
	if len(ids) == 0 {
		c.cancelledAt = now
	}
}

// status aggregates the invocations as SSM's command Status does.
func (c *command) status(now time.Time) string {
	v := c.view(now)
	return v["Status"].(string)
}

func (c *command) view(now time.Time) map[string]any {
	var completed, errs, dto, running int
	cancelled := 0
	for _, inv := range c.invs {
		st, det := inv.state(c, now)
		switch st {
		case "Pending", "InProgress", "Delayed":
			running++
			continue
		}
		completed++
		switch {
		case det == "DeliveryTimedOut":
			dto++
		case st == "Failed" || det == "ExecutionTimedOut":
			errs++
		case st == "Cancelled":
			cancelled++
		}
	}
	maxErr := parseLimit(c.maxErrors, len(c.invs))
	status := "InProgress"
	switch {
	case running > 0 && c.cancelledAt.IsZero():
		if completed == 0 && now.Equal(c.requested) {
			status = "Pending"
		}
	case running > 0:
		status = "Cancelling"
	case !c.cancelledAt.IsZero():
		status = "Cancelled"
	case errs > maxErr:
		status = "Failed"
	case errs+dto+cancelled > 0:
		status = "Incomplete"
	default:
		status = "Success"
	}
	if running > 0 && !c.cancelledAt.IsZero() {
		status = "Cancelling"
	}
	details := status
	if status == "Incomplete" {
		// SSM reports a finished command with some non-successes as Success
		// in Status and Incomplete in StatusDetails; keep Status terminal.
		status = "Success"
		if errs+dto > 0 {
			status = "Failed"
		}
	}
	return map[string]any{
		"CommandId": c.id, "DocumentName": c.doc, "Comment": c.comment, "Parameters": c.params,
		"InstanceIds": c.instanceIDs, "MaxConcurrency": c.maxConcurrency, "MaxErrors": c.maxErrors,
		"TimeoutSeconds": int(c.timeout / time.Second), "RequestedDateTime": epoch(c.requested),
		"Status": status, "StatusDetails": details, "TargetCount": len(c.invs), "CompletedCount": completed,
		"ErrorCount": errs, "DeliveryTimedOutCount": dto,
	}
}

func (inv *invocation) view(c *command, now time.Time, details bool) map[string]any {
	st, det := inv.state(c, now)
	v := map[string]any{"CommandId": c.id, "InstanceId": inv.instance.ID, "InstanceName": inv.instance.Name + ".internal",
		"Comment": c.comment, "DocumentName": c.doc, "RequestedDateTime": epoch(c.requested), "Status": st, "StatusDetails": det}
	if details {
		plugin := map[string]any{"Name": "PatchLinux", "Status": st, "StatusDetails": det, "ResponseCode": inv.responseCode(st),
			"Output": truncate(inv.output(st), 2500)}
		if t, ok := inv.finishedAt(c, now); ok {
			plugin["ResponseFinishDateTime"] = epoch(t)
			plugin["ResponseStartDateTime"] = epoch(inv.start)
		}
		if strings.Contains(inv.instance.Platform, "Windows") {
			plugin["Name"] = "PatchWindows"
		}
		if inv.hookFailed {
			plugin["Name"] = hookStep
		}
		v["CommandPlugins"] = []any{plugin}
	}
	return v
}

// patchState is DescribeInstancePatchStates' view of an instance at now:
// the last Install that finished decides it.
func (in *Instance) patchState(now time.Time) map[string]any {
	st := map[string]any{"InstanceId": in.ID, "PatchGroup": in.Tags["Patch Group"], "BaselineId": "pb-0123456789abcdef0",
		"Operation": "Scan", "OperationStartTime": epoch(now.Add(-24 * time.Hour)), "OperationEndTime": epoch(now.Add(-24*time.Hour + 5*time.Minute)),
		"InstalledCount": 100, "MissingCount": in.Missing, "FailedCount": 0, "InstalledPendingRebootCount": 0, "InstalledOtherCount": 3,
		"InstalledRejectedCount": 0, "NotApplicableCount": 400}
	last := in.lastInstall(now)
	if last != nil {
		st["Operation"] = "Install"
		st["OperationStartTime"] = epoch(last.start)
		st["OperationEndTime"] = epoch(last.end)
		switch last.final {
		case "Success":
			installed := in.Missing - in.StillMissing - in.FailedAfter
			st["InstalledCount"] = 100 + installed
			st["MissingCount"] = in.StillMissing
			st["FailedCount"] = in.FailedAfter
			// Without a reboot, the installed patches wait for one.
			noReboot := last.cmd != nil && len(last.cmd.params["RebootOption"]) > 0 && last.cmd.params["RebootOption"][0] == "NoReboot"
			if (noReboot || in.NoRebootHappens) && installed > 0 {
				st["InstalledCount"] = 100
				st["InstalledPendingRebootCount"] = installed
			}
		case "Failed":
			st["FailedCount"] = 1
			st["MissingCount"] = max(in.Missing-1, 0)
		}
	}
	in.recount(st, now, last)
	return st
}
