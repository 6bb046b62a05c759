//go:build integration

package notify_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/patchgate/patchgate/internal/motoenv"
	"github.com/patchgate/patchgate/internal/notify"
)

func TestMotoPublishOncePerRun(t *testing.T) {
	cfg, _ := motoenv.FreshAccount(t)
	cl := sns.NewFromConfig(cfg)
	ctx := context.Background()
	for _, name := range []string{motoenv.Unique("patchgate-"), motoenv.Unique("patchgate-") + ".fifo"} {
		attrs := map[string]string{}
		if len(name) > 5 && name[len(name)-5:] == ".fifo" {
			attrs["FifoTopic"] = "true"
		}
		topic, err := cl.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name), Attributes: attrs})
		if err != nil {
			t.Fatal(err)
		}
		n := &notify.Notifier{SNS: cl, Topic: aws.ToString(topic.TopicArn), Ledger: &notify.MemoryLedger{}}
		e := notify.Event{Kind: notify.RunStart, Policy: "web", RunID: "r1", RunURL: "https://example.com/run/1", Summary: "line 1\nline 2"}
		if sent, err := n.Notify(ctx, e); !sent || err != nil {
			t.Fatalf("%s: %v %v", name, sent, err)
		}
		if sent, err := n.Notify(ctx, e); sent || err != nil {
			t.Fatalf("%s: the same event twice: %v %v", name, sent, err)
		}
	}
}
