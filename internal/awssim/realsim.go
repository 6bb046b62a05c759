package awssim

import (
	"fmt"
	"hash/fnv"
	"math"
	"time"
)

// The realistic model's effects on the simulator that are not per-install
// draws (those are in command.go's schedule and inspector.go): rate limits
// per account-region and other tools' commands.

// realLimit applies the realistic model's rate limit of op in k, reporting
// whether the call may proceed. s.mu is held.
func (s *Sim) realLimit(op string, k regionKey) bool {
	if s.real == nil || k == (regionKey{}) {
		return true
	}
	rate := s.real.RateLimits[op]
	if rate <= 0 {
		return true
	}
	now := s.clock.Now()
	key := op + " " + k.account + " " + k.region
	b := s.realLimits[key]
	if b == nil {
		b = &bucket{rate: rate, burst: max(rate, 1), tokens: max(rate, 1), at: now}
		s.realLimits[key] = b
	}
	return b.take(now)
}

// other is the schedule of other tools' commands in one account-region.
type other struct {
	n    int       // commands made so far
	next time.Time // when the next one is sent
}

var otherDocs = []struct{ doc, comment string }{
	{"AWS-RunShellScript", "rotate application logs"},
	{"AWS-RunShellScript", ""},
	{"AWS-RunShellScript", "collect diagnostics for INC-4471"},
	{"AWS-RunPowerShellScript", "restart IIS app pool"},
	{"AWS-ConfigureAWSPackage", "install AmazonCloudWatchAgent"},
	{"AWS-UpdateSSMAgent", ""},
	{"AWS-GatherSoftwareInventory", "ad hoc inventory"},
}

func hashString(v string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(v))
	return h.Sum64()
}

// otherCommands adds the commands other tools sent in k up to now, from
// two hours before the simulator started, at OtherCommandsPerHour on
// average (a Poisson process drawn from the seed and k). s.mu is held.
func (s *Sim) otherCommands(k regionKey, now time.Time) {
	r := s.real
	if r == nil || r.OtherCommandsPerHour <= 0 || len(s.fleet[k]) == 0 {
		return
	}
	o := s.others[k]
	if o == nil {
		o = &other{next: s.origin.Add(-2 * time.Hour)}
		s.others[k] = o
	}
	kh := mix(hashString(k.account), hashString(k.region))
	for !o.next.After(now) {
		s.addOther(k, kh, o.n, o.next)
		o.n++
		gap := -math.Log(1-r.unit(streamOther, kh, uint64(o.n))) * float64(time.Hour) / r.OtherCommandsPerHour
		o.next = o.next.Add(max(time.Duration(gap), time.Second))
	}
}

// addOther makes other tool command n of k, sent at: a few instances, a
// short run, nearly always a success. Its invocations are not installs.
func (s *Sim) addOther(k regionKey, kh uint64, n int, at time.Time) {
	r, fleet := s.real, s.fleet[k]
	u := func(i uint64) float64 { return r.unit(streamOther, kh, uint64(n), i) }
	d := otherDocs[int(u(1)*float64(len(otherDocs)))]
	count := min(1+int(u(2)*20), len(fleet))
	first := int(u(3) * float64(len(fleet)))
	c := &command{id: fmt.Sprintf("%08x-07e4-4000-8000-%012x", uint32(kh), n), comment: d.comment, doc: d.doc,
		params: map[string][]string{"commands": {"true"}}, maxConcurrency: "50", maxErrors: "0", timeout: 10 * time.Minute, requested: at}
	for i := 0; i < count; i++ {
		in := fleet[(first+i)%len(fleet)]
		start := at.Add(time.Duration(1+u(10+uint64(i))*20) * time.Second)
		inv := &invocation{cmd: c, instance: in, start: start, end: start.Add(time.Duration(5+u(100+uint64(i))*175) * time.Second),
			final: "Success", details: "Success"}
		if in.Ping != "Online" {
			inv.start, inv.delayed = at, true
			inv.end, inv.final, inv.details = at.Add(c.timeout), "TimedOut", "DeliveryTimedOut"
		} else if u(200+uint64(i)) < 0.02 {
			inv.final, inv.details = "Failed", "Failed"
		}
		c.invs = append(c.invs, inv)
		c.instanceIDs = append(c.instanceIDs, in.ID)
	}
	s.commands[k] = append(s.commands[k], c)
	s.cmdByID[c.id] = c
}
