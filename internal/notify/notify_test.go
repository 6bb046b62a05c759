package notify

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/clock"
)

const acct, region = "111122223333", "us-east-1"

func harness(t *testing.T) (*awssim.Sim, *sns.Client) {
	t.Helper()
	sim := awssim.New(&awssim.Scenario{Accounts: []string{acct}}, clock.NewStep(time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)))
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, sns.NewFromConfig(awssim.Config(srv.URL, acct, region))
}

func summary(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	return b.String()
}

func TestEachEventOnceAcrossARerunOfTheSameRun(t *testing.T) {
	sim, cl := harness(t)
	ledger := &MemoryLedger{} // stands for the run's state kept in AWS
	topic := "arn:aws:sns:us-east-1:111122223333:patchgate"
	events := []Event{
		{Kind: RunStart, Policy: "web", RunID: "r1", RunURL: "https://github.com/acme/infra/actions/runs/1", Summary: summary(40)},
		{Kind: PhaseFailed, Policy: "web", RunID: "r1", Phase: "staging", RunURL: "https://github.com/acme/infra/actions/runs/1", Summary: "staging failed: alarm web-5xx"},
		{Kind: RunEnd, Policy: "web", RunID: "r1", Status: "failed", RunURL: "https://github.com/acme/infra/actions/runs/1"},
	}
	for attempt := range 2 { // the first job, then a rerun of the same run
		n := &Notifier{SNS: cl, Topic: topic, Ledger: ledger}
		for _, e := range events {
			sent, err := n.Notify(context.Background(), e)
			if err != nil || sent != (attempt == 0) {
				t.Fatalf("attempt %d %s: sent=%v err=%v", attempt, e.Kind, sent, err)
			}
		}
	}
	msgs := sim.Published()
	if len(msgs) != 3 {
		t.Fatalf("%d messages, want 3", len(msgs))
	}
	m := msgs[0]
	if m.Subject != "patchgate web: run r1 started" || m.Attributes["patchgate.event-id"] != "r1/run-start" ||
		!strings.Contains(m.Message, "line 15\n…\n") || strings.Contains(m.Message, "line 16") ||
		!strings.HasSuffix(m.Message, "Run: https://github.com/acme/infra/actions/runs/1\n") {
		t.Errorf("%+v", m)
	}
	if msgs[1].Subject != "patchgate web: phase staging FAILED (run r1)" || msgs[2].Subject != "patchgate web: run r1 ended: failed" {
		t.Errorf("%q %q", msgs[1].Subject, msgs[2].Subject)
	}
	// Another run notifies again.
	n := &Notifier{SNS: cl, Topic: topic, Ledger: ledger}
	if sent, err := n.Notify(context.Background(), Event{Kind: RunStart, Policy: "web", RunID: "r2"}); !sent || err != nil {
		t.Errorf("run r2: %v %v", sent, err)
	}
}

func TestFIFOTopicsDeduplicateEvenWithoutTheLedger(t *testing.T) {
	sim, cl := harness(t)
	topic := "arn:aws:sns:us-east-1:111122223333:patchgate.fifo"
	e := Event{Kind: PhaseFailed, Policy: "web", RunID: "r1", Phase: "production"}
	for range 2 { // two processes, each with its own memory
		n := &Notifier{SNS: cl, Topic: topic}
		if _, err := n.Notify(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	msgs := sim.Published()
	if len(msgs) != 1 || msgs[0].GroupID != "patchgate-web" || len(msgs[0].DeduplicationID) != 64 {
		t.Fatalf("%+v", msgs)
	}
}

func TestSubjectIsOneShortASCIILine(t *testing.T) {
	s := Subject(Event{Kind: PhaseFailed, Policy: "web", RunID: "r1", Phase: "stag\ning\u00e9" + strings.Repeat("x", 200)})
	if len(s) > 100 || strings.ContainsAny(s, "\r\n") || strings.ContainsRune(s, '\u00e9') {
		t.Errorf("%q", s)
	}
	if m := Message(Event{Kind: RunEnd, Summary: "a\rb\u2028c"}); strings.ContainsAny(m, "\r\u2028") {
		t.Errorf("%q", m)
	}
}

func TestAFailedPublishIsAnErrorAndNotRecorded(t *testing.T) {
	sim, cl := harness(t)
	ledger := &MemoryLedger{}
	n := &Notifier{SNS: cl, Topic: "arn:aws:sns:eu-west-1:111122223333:patchgate", Ledger: ledger}
	_, err := n.Notify(context.Background(), Event{Kind: RunStart, Policy: "web", RunID: "r1"})
	if err == nil || !strings.Contains(err.Error(), "sns:Publish r1/run-start") || !strings.Contains(err.Error(), "NotFound") {
		t.Fatalf("%v", err)
	}
	if seen, _ := ledger.Seen(context.Background(), "r1/run-start"); seen || len(sim.Published()) != 0 {
		t.Error("a message that was not sent must not be recorded as sent")
	}
}
