package awssim

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The simulator's side of issue #20: EC2 snapshots (ec2.go), CloudWatch
// alarms (alarms.go), Security Hub (securityhub.go), SNS (sns.go) and the
// hooks document (hooks.go). Their state lives in one safetyState, guarded
// by Sim.mu.

// AlarmSpec is one CloudWatch alarm of the scenario and its scheduled
// state changes.
type AlarmSpec struct {
	Account string `yaml:"account"` // default: the first account
	Region  string `yaml:"region"`
	Name    string `yaml:"name"`
	// Type is MetricAlarm (default), CompositeAlarm or LogAlarm.
	Type   string `yaml:"type"`
	State  string `yaml:"state"` // at the start: OK (default), ALARM, INSUFFICIENT_DATA
	Reason string `yaml:"reason"`
	// Changes happen After the simulation starts (clock time).
	Changes []AlarmChange `yaml:"changes"`
}

// AlarmChange is one scheduled alarm state change.
type AlarmChange struct {
	After  time.Duration `yaml:"after"`
	State  string        `yaml:"state"`
	Reason string        `yaml:"reason"`
}

type alarmState struct {
	spec  AlarmSpec
	arn   string
	set   []alarmChangeAt // set by SetAlarm, after the scheduled ones
	start time.Time
}

type alarmChangeAt struct {
	at            time.Time
	state, reason string
}

type safetyState struct {
	start     time.Time
	snapshots []*snapshot
	nextSnap  int
	alarms    []*alarmState
	// findings per account, by finding id, as JSON objects.
	findings map[string]map[string]map[string]any
	imports  int
	messages []SNSMessage
	nextMsg  int
}

func newSafety(sc *Scenario, now time.Time) *safetyState {
	st := &safetyState{start: now, findings: map[string]map[string]map[string]any{}}
	for _, a := range sc.Alarms {
		if a.Account == "" {
			a.Account = sc.Accounts[0]
		}
		if a.Type == "" {
			a.Type = "MetricAlarm"
		}
		if a.State == "" {
			a.State = "OK"
		}
		st.alarms = append(st.alarms, &alarmState{spec: a, start: now,
			arn: "arn:aws:cloudwatch:" + a.Region + ":" + a.Account + ":alarm:" + a.Name})
	}
	return st
}

// serveSafety answers the requests of the issue #20 services; it returns
// false for a request it does not serve.
func (s *Sim) serveSafety(w http.ResponseWriter, r *http.Request, body []byte, account, region string) bool {
	_, _, service := s.caller(r)
	switch {
	case service == "securityhub" || (service == "" && strings.HasPrefix(r.URL.Path, "/findings") && r.URL.Path != "/findings/list"):
		s.serveSecurityHub(w, r, body, account, region)
		return true
	case strings.Contains(r.Header.Get("Content-Type"), "x-www-form-urlencoded"):
		form, _ := url.ParseQuery(string(body))
		switch service {
		case "ec2":
			s.serveEC2(w, form, account, region)
			return true
		case "sns":
			s.serveSNS(w, form, account, region)
			return true
		}
	}
	return false
}

// demoSafety adds the demo's alarms (OK unless FailHealth) and hook
// documents to every account and region of the demo.
func demoSafety(sc *Scenario, o DemoOptions) {
	sc.Documents = append(sc.Documents, "App-Drain", "App-HealthCheck")
	for _, acct := range sc.Accounts {
		for _, region := range []string{"us-east-1", "eu-west-1"} {
			web := AlarmSpec{Account: acct, Region: region, Name: "web-5xx"}
			if o.FailHealth && acct == sc.Accounts[0] && region == "us-east-1" {
				web.Changes = []AlarmChange{{After: time.Hour, State: "ALARM",
					Reason: "Threshold Crossed: 3 out of the last 3 datapoints [41.0, 37.0, 52.0] were greater than the threshold (5.0)"}}
			}
			sc.Alarms = append(sc.Alarms, web, AlarmSpec{Account: acct, Region: region, Name: "web-latency-p99"})
		}
	}
}

func (sc *Scenario) validateAlarms() error {
	states := map[string]bool{"": true, "OK": true, "ALARM": true, "INSUFFICIENT_DATA": true}
	for i, a := range sc.Alarms {
		switch {
		case a.Name == "" || a.Region == "":
			return fmt.Errorf("scenario: alarm %d needs a name and a region", i)
		case a.Type != "" && a.Type != "MetricAlarm" && a.Type != "CompositeAlarm" && a.Type != "LogAlarm":
			return fmt.Errorf("scenario: alarm %s: unknown type %q", a.Name, a.Type)
		case !states[a.State]:
			return fmt.Errorf("scenario: alarm %s: unknown state %q", a.Name, a.State)
		}
		for _, c := range a.Changes {
			if c.State == "" || !states[c.State] || c.After < 0 {
				return fmt.Errorf("scenario: alarm %s: a change needs a state (OK, ALARM, INSUFFICIENT_DATA) and after >= 0", a.Name)
			}
		}
	}
	return nil
}
