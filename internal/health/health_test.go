package health

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/clock"
	"github.com/patchgate/patchgate/internal/policy"
)

const acct, region = "111122223333", "us-east-1"

var start = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

func harness(t *testing.T, alarms []awssim.AlarmSpec) (*awssim.Sim, *Reader, *clock.Step) {
	t.Helper()
	c := clock.NewStep(start)
	sim := awssim.New(&awssim.Scenario{Accounts: []string{acct}, Alarms: alarms}, c)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, &Reader{CW: cloudwatch.NewFromConfig(awssim.Config(srv.URL, acct, region)), Clock: c}, c
}

func TestReadBatchesNamesPaginatesPrefixesAndSeesEveryAlarmType(t *testing.T) {
	var specs []awssim.AlarmSpec
	var names []string
	for i := range 150 {
		n := fmt.Sprintf("svc-%03d", i)
		names = append(names, n)
		specs = append(specs, awssim.AlarmSpec{Region: region, Name: n})
	}
	for i := range 120 {
		specs = append(specs, awssim.AlarmSpec{Region: region, Name: fmt.Sprintf("web-%03d", i)})
	}
	specs = append(specs, awssim.AlarmSpec{Region: region, Name: "web-composite", Type: "CompositeAlarm", State: "ALARM", Reason: "child alarm web-5xx"},
		awssim.AlarmSpec{Region: "eu-west-1", Name: "web-elsewhere"})
	sim, r, _ := harness(t, specs)
	rd, err := r.Read(context.Background(), policy.HealthGate{Names: append(names, "gone"), Prefixes: []string{"web-", "nothing-"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rd.Alarms) != 150+120+1 {
		t.Errorf("read %d alarms, want 271", len(rd.Alarms))
	}
	if a := rd.Alarms["web-composite"]; a.Type != "CompositeAlarm" || a.State != StateAlarm || a.Reason != "child alarm web-5xx" {
		t.Errorf("composite alarm: %+v", a)
	}
	if _, ok := rd.Alarms["web-elsewhere"]; ok {
		t.Error("an alarm of another region was read")
	}
	if strings.Join(rd.Missing, ",") != "gone,nothing-*" {
		t.Errorf("missing %v", rd.Missing)
	}
	// 151 names: 2 calls; web-: 121 alarms over 2 pages; nothing-: 1.
	if n := sim.Calls()["cloudwatch:DescribeAlarms"]; n != 5 {
		t.Errorf("DescribeAlarms called %d times, want 5", n)
	}
}

func TestStartRefusesAnAlarmAlreadyInAlarmUnlessAllowed(t *testing.T) {
	_, r, _ := harness(t, []awssim.AlarmSpec{{Region: region, Name: "web-5xx", State: "ALARM", Reason: "Threshold Crossed: 1 datapoint [12.0] was greater than the threshold (5.0)"}, {Region: region, Name: "web-latency"}})
	g := policy.HealthGate{Names: []string{"web-5xx", "web-latency"}}
	rd, err := r.Read(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	err = Start(g, "staging", rd)
	var b *Breach
	if !errors.As(err, &b) || len(b.Alarms) != 1 || !strings.Contains(err.Error(), `health gate before staging: alarm "web-5xx" is in ALARM since 2026-11-22T02:00:00Z: Threshold Crossed`) {
		t.Fatalf("%v", err)
	}
	g.AllowAlarmAtStart = true
	if err := Start(g, "staging", rd); err != nil {
		t.Errorf("allowAlarmAtStart: %v", err)
	}
	g.Names = append(g.Names, "web-typo")
	if rd, _ = r.Read(context.Background(), g); Start(g, "staging", rd) == nil {
		t.Error("a listed alarm that does not exist must refuse the phase: the gate cannot watch it")
	}
}

func TestEntered(t *testing.T) {
	t0, t1 := start, start.Add(time.Minute)
	reading := func(as ...Alarm) Reading {
		m := map[string]Alarm{}
		for _, a := range as {
			m[a.Name] = a
		}
		return Reading{Alarms: m}
	}
	for _, tc := range []struct {
		name        string
		base, now   Alarm
		inBase      bool
		wantEntered bool
	}{
		{"OK to ALARM", Alarm{Name: "a", State: "OK", Since: t0}, Alarm{Name: "a", State: StateAlarm, Since: t1}, true, true},
		{"stays OK", Alarm{Name: "a", State: "OK", Since: t0}, Alarm{Name: "a", State: "OK", Since: t0}, true, false},
		{"already in ALARM, unchanged", Alarm{Name: "a", State: StateAlarm, Since: t0}, Alarm{Name: "a", State: StateAlarm, Since: t0}, true, false},
		{"in ALARM again since", Alarm{Name: "a", State: StateAlarm, Since: t0}, Alarm{Name: "a", State: StateAlarm, Since: t1}, true, true},
		{"INSUFFICIENT_DATA is not ALARM", Alarm{Name: "a", State: "OK", Since: t0}, Alarm{Name: "a", State: "INSUFFICIENT_DATA", Since: t1}, true, false},
		{"new alarm under a prefix, in ALARM", Alarm{}, Alarm{Name: "a", State: StateAlarm, Since: t0}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := reading()
			if tc.inBase {
				base = reading(tc.base)
			}
			got := Entered(base, reading(tc.now))
			if (len(got) == 1) != tc.wantEntered {
				t.Errorf("entered %v, want %v", got, tc.wantEntered)
			}
		})
	}
}

func TestSoakStopsAtTheFirstAlarmWithItsNameReasonAndTime(t *testing.T) {
	_, r, c := harness(t, []awssim.AlarmSpec{{Region: region, Name: "web-5xx", Changes: []awssim.AlarmChange{
		{After: 20 * time.Minute, State: "ALARM", Reason: "Threshold Crossed: 3 datapoints were greater than the threshold (5.0)"}}}})
	g := policy.HealthGate{Names: []string{"web-5xx"}, PollInterval: time.Minute}
	base, err := r.Read(context.Background(), g)
	if err != nil || Start(g, "staging", base) != nil {
		t.Fatal(err)
	}
	err = r.Soak(context.Background(), g, base, "staging", time.Hour)
	var b *Breach
	if !errors.As(err, &b) || len(b.Alarms) != 1 || b.Alarms[0].Name != "web-5xx" || !b.Alarms[0].Since.Equal(start.Add(20*time.Minute)) ||
		!strings.Contains(err.Error(), "during staging's soak") || !strings.Contains(err.Error(), "3 datapoints") {
		t.Fatalf("%v", err)
	}
	// It stopped at the poll that saw the alarm, not at the soak's end.
	if got := c.Now().Sub(start); got != 20*time.Minute {
		t.Errorf("soak stopped after %v, want 20m", got)
	}
}

func TestAQuietSoakPollsOnItsIntervalToTheEnd(t *testing.T) {
	sim, r, c := harness(t, []awssim.AlarmSpec{{Region: region, Name: "web-5xx"}})
	g := policy.HealthGate{Names: []string{"web-5xx"}, PollInterval: 5 * time.Minute}
	base, _ := r.Read(context.Background(), g)
	before := sim.Calls()["cloudwatch:DescribeAlarms"]
	if err := r.Soak(context.Background(), g, base, "staging", 32*time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := c.Now().Sub(start); got != 32*time.Minute {
		t.Errorf("soak lasted %v", got)
	}
	// Reads at 0, 5, ..., 30 and 32 minutes.
	if n := sim.Calls()["cloudwatch:DescribeAlarms"] - before; n != 8 {
		t.Errorf("%d reads, want 8", n)
	}
}

func TestBreachTextIsOneLineWhateverTheAlarmSays(t *testing.T) {
	b := &Breach{When: "after production wave 1", Alarms: []Alarm{{Name: "x\r::error::y", State: StateAlarm, Reason: "line1\nline2\u2028", Since: start}}}
	if s := b.Error(); strings.ContainsAny(s, "\r\n\u2028") {
		t.Errorf("%q", s)
	}
}
