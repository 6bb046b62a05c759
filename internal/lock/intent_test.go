package lock

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

func TestIntentRoundTrip(t *testing.T) {
	_, cl := store(t)
	ctx := context.Background()
	if in, err := ReadIntent(ctx, cl, "web"); in != nil || err != nil {
		t.Fatalf("no intent yet: %+v %v", in, err)
	}
	ids := []string{"i-0b", "i-0a"}
	want := Intent{RunID: "42", Policy: "web", Phase: "staging", Wave: 2, Chunks: 1, Digest: Digest(ids), InstanceIDs: [][]string{ids},
		At: time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)}
	if err := PutIntent(ctx, cl, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadIntent(ctx, cl, "web")
	if err != nil || got == nil || fmt.Sprint(*got) != fmt.Sprint(want) {
		t.Fatalf("read %+v %v, want %+v", got, err, want)
	}
	if Digest(ids) != Digest([]string{"i-0a", "i-0b"}) || Digest(ids) == Digest([]string{"i-0a"}) {
		t.Fatal("the digest is of the set of ids, in any order")
	}
	// The next wave's intent replaces it.
	want.Wave = 3
	if err := PutIntent(ctx, cl, want); err != nil {
		t.Fatal(err)
	}
	if got, _ := ReadIntent(ctx, cl, "web"); got.Wave != 3 {
		t.Fatalf("overwrite: %+v", got)
	}
	if err := ClearIntent(ctx, cl, "web"); err != nil {
		t.Fatal(err)
	}
	if err := ClearIntent(ctx, cl, "web"); err != nil {
		t.Fatalf("clearing twice: %v", err)
	}
	if in, err := ReadIntent(ctx, cl, "web"); in != nil || err != nil {
		t.Fatalf("cleared: %+v %v", in, err)
	}
}

// A wave too large for a 4 KB parameter keeps its Comments (chunk count)
// and digest, and drops the instance lists.
func TestLargeIntentFitsAParameter(t *testing.T) {
	_, cl := store(t)
	ctx := context.Background()
	var chunks [][]string
	for c := 0; c < 20; c++ {
		var ids []string
		for i := 0; i < 50; i++ {
			ids = append(ids, fmt.Sprintf("i-%017x", c*50+i))
		}
		chunks = append(chunks, ids)
	}
	if err := PutIntent(ctx, cl, Intent{RunID: "42", Policy: "web", Phase: "production", Wave: 1, Chunks: 20, Digest: "d", InstanceIDs: chunks}); err != nil {
		t.Fatal(err)
	}
	got, err := ReadIntent(ctx, cl, "web")
	if err != nil || got.Chunks != 20 || got.InstanceIDs != nil || got.Digest != "d" {
		t.Fatalf("large intent read back as %+v, %v", got, err)
	}
	out, _ := cl.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(IntentName("web"))})
	if n := len(aws.ToString(out.Parameter.Value)); n > maxIntent {
		t.Fatalf("intent of %d bytes", n)
	}
}

// A parameter at the intent's name that patchgate did not write is an
// error to show, never an intent to act on or to overwrite silently.
func TestForeignIntentValueIsAnError(t *testing.T) {
	_, cl := store(t)
	ctx := context.Background()
	if _, err := cl.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(IntentName("web")), Value: aws.String("hello"), Type: ssmtypes.ParameterTypeString}); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadIntent(ctx, cl, "web"); err == nil || !strings.Contains(err.Error(), IntentName("web")) {
		t.Fatalf("want an error naming the parameter, got %v", err)
	}
}

// An intent of exactly maxIntent bytes keeps its instance ids (they fit a
// standard parameter); one byte more drops them. The Digest pads the JSON
// to the size wanted.
func TestIntentAtTheSizeLimit(t *testing.T) {
	ids := [][]string{{"i-0123456789abcdef0", "i-0123456789abcdef1"}}
	at := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	sized := func(n int) Intent {
		in := Intent{RunID: "42", Policy: "web", Phase: "production", Wave: 1, Chunks: 1, InstanceIDs: ids, At: at}
		base, _ := json.Marshal(in)
		in.Digest = strings.Repeat("d", n-len(base))
		return in
	}
	for _, tc := range []struct {
		size    int
		keepIDs bool
	}{{maxIntent, true}, {maxIntent + 1, false}} {
		_, cl := store(t)
		ctx := context.Background()
		if err := PutIntent(ctx, cl, sized(tc.size)); err != nil {
			t.Fatal(err)
		}
		got, err := ReadIntent(ctx, cl, "web")
		if err != nil || (got.InstanceIDs != nil) != tc.keepIDs {
			t.Errorf("intent of %d bytes read back with ids %v (want kept: %v), %v", tc.size, got.InstanceIDs, tc.keepIDs, err)
		}
	}
}
