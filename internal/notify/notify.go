// Package notify sends a run's notifications to an SNS topic
// (reporting.sns): when the run starts, when a phase fails, and when the
// run ends, each with the summary's first lines and the run's link.
//
// Each event is sent once per run: its key (run id, event, phase) is
// checked in a Ledger before publishing and recorded after, so a rerun of
// the same run (a later job picking it up) does not notify again. SNS
// standard topics have no deduplication, so delivery is at least once:
// a crash between Publish and Record, or an SDK retry of a Publish whose
// answer was lost, can repeat a message. FIFO topics (.fifo) also get a
// MessageDeduplicationId derived from the key, which SNS honours for five
// minutes.
package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
)

// SNS is the part of the SNS API notifications use.
type SNS interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// Ledger remembers which events a run has sent. Backing it with the run's
// state in AWS (e.g. an S3 object created with If-None-Match) makes
// "once per run" hold across jobs.
type Ledger interface {
	Seen(ctx context.Context, key string) (bool, error)
	Record(ctx context.Context, key string) error
}

// Kinds of event.
const (
	RunStart    = "run-start"
	PhaseFailed = "phase-failed"
	RunEnd      = "run-end"
)

// Event is one notification.
type Event struct {
	Kind          string
	Policy, RunID string
	Phase         string // PhaseFailed
	Status        string // RunEnd: the run's outcome ("passed", "failed", "cancelled")
	RunURL        string
	// Summary is the report; its first SummaryLines lines are sent.
	Summary string
}

// SummaryLines is how much of the summary a message carries.
const SummaryLines = 15

// Key identifies an event within its run.
func Key(e Event) string {
	k := e.RunID + "/" + e.Kind
	if e.Kind == PhaseFailed {
		k += "/" + e.Phase
	}
	return k
}

// Notifier publishes events to one topic.
type Notifier struct {
	SNS    SNS
	Topic  string // topic ARN; the client must be in its region and allowed to publish
	Ledger Ledger // nil: a MemoryLedger (once per process only)
	Log    *slog.Logger
	once   sync.Once
}

// Notify publishes e unless its run already sent it. sent reports whether
// a message went out now.
func (n *Notifier) Notify(ctx context.Context, e Event) (sent bool, err error) {
	n.once.Do(func() {
		if n.Ledger == nil {
			n.Ledger = &MemoryLedger{}
		}
		if n.Log == nil {
			n.Log = slog.Default()
		}
	})
	switch e.Kind {
	case RunStart, PhaseFailed, RunEnd:
	default:
		return false, fmt.Errorf("notify: unknown event %q", e.Kind)
	}
	key := Key(e)
	if seen, err := n.Ledger.Seen(ctx, key); err != nil {
		return false, fmt.Errorf("notify: checking whether %s was sent: %w", key, err)
	} else if seen {
		n.Log.Info("notification already sent for this run", "event", key)
		return false, nil
	}
	in := &sns.PublishInput{
		TopicArn: aws.String(n.Topic),
		Subject:  aws.String(Subject(e)),
		Message:  aws.String(Message(e)),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{
			"patchgate.event-id": {DataType: aws.String("String"), StringValue: aws.String(key)},
			"patchgate.event":    {DataType: aws.String("String"), StringValue: aws.String(e.Kind)},
			"patchgate.policy":   {DataType: aws.String("String"), StringValue: aws.String(orDash(e.Policy))},
		},
	}
	if strings.HasSuffix(n.Topic, ".fifo") {
		sum := sha256.Sum256([]byte(e.Policy + "\x00" + key))
		in.MessageGroupId = aws.String(groupID(e.Policy))
		in.MessageDeduplicationId = aws.String(hex.EncodeToString(sum[:]))
	}
	if _, err := n.SNS.Publish(ctx, in); err != nil {
		return false, fmt.Errorf("sns:Publish %s to %s: %w", key, n.Topic, err)
	}
	if err := n.Ledger.Record(ctx, key); err != nil {
		// Sent, but a rerun may send it again: say so, do not fail the run.
		n.Log.Warn("notification sent but not recorded; a rerun may repeat it", "event", key, "err", err)
	}
	return true, nil
}

// Subject is the message's subject: one line, at most 100 characters
// (SNS's limit), ASCII without control characters.
func Subject(e Event) string {
	var s string
	switch e.Kind {
	case RunStart:
		s = fmt.Sprintf("patchgate %s: run %s started", e.Policy, e.RunID)
	case PhaseFailed:
		s = fmt.Sprintf("patchgate %s: phase %s FAILED (run %s)", e.Policy, e.Phase, e.RunID)
	default:
		s = fmt.Sprintf("patchgate %s: run %s ended: %s", e.Policy, e.RunID, orDash(e.Status))
	}
	// SNS subjects must start with a letter, number or punctuation and be
	// printable ASCII.
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r >= 0x20 && r < 0x7f {
			b = append(b, byte(r))
		} else {
			b = append(b, '?')
		}
	}
	if len(b) > 100 {
		b = append(b[:97], "..."...)
	}
	return string(b)
}

// Message is the body: what happened, the summary's first lines, the link.
func Message(e Event) string {
	var b strings.Builder
	b.WriteString(Subject(e))
	b.WriteString("\n\n")
	lines := strings.Split(strings.ReplaceAll(e.Summary, "\r\n", "\n"), "\n")
	n := 0
	for _, l := range lines {
		if n == SummaryLines {
			b.WriteString("…\n")
			break
		}
		b.WriteString(cleanLine(l))
		b.WriteByte('\n')
		n++
	}
	if e.RunURL != "" {
		b.WriteString("\nRun: " + cleanLine(e.RunURL) + "\n")
	}
	return b.String()
}

func cleanLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f || r == 0x85 || r == 0x2028 || r == 0x2029 {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 500 {
		s = string(r[:500]) + "…"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// groupID is a valid MessageGroupId (1-128 of letters, digits, punctuation).
func groupID(policy string) string {
	if policy == "" {
		return "patchgate"
	}
	return "patchgate-" + policy
}

// MemoryLedger is a Ledger for one process.
type MemoryLedger struct {
	mu   sync.Mutex
	sent map[string]bool
}

func (m *MemoryLedger) Seen(_ context.Context, key string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sent[key], nil
}

func (m *MemoryLedger) Record(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sent == nil {
		m.sent = map[string]bool{}
	}
	m.sent[key] = true
	return nil
}
