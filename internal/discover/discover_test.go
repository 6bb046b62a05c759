package discover_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/patchgate/patchgate/internal/awssim"
	"github.com/patchgate/patchgate/internal/discover"
)

func TestInstances(t *testing.T) {
	sc := &awssim.Scenario{Accounts: []string{"111122223333"}, Groups: []awssim.Group{
		{Account: "111122223333", Region: "us-east-1", Count: 120, Name: "web", Tags: map[string]string{"App": "web", "Env": "prd"}},
		{Account: "111122223333", Region: "us-east-1", Count: 3, Name: "lost", Tags: map[string]string{"App": "web", "Env": "prd"}, Ping: "ConnectionLost"},
		{Account: "111122223333", Region: "us-east-1", Count: 5, Name: "other", Tags: map[string]string{"App": "db", "Env": "prd"}},
	}}
	sim := awssim.New(sc, nil)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	cl := ssm.NewFromConfig(awssim.Config(srv.URL, "111122223333", "us-east-1"))
	ctx := context.Background()

	got, err := discover.Instances(ctx, cl, map[string]string{"App": "web", "Env": "prd"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	online := 0
	for i, in := range got {
		if i > 0 && got[i-1].ID >= in.ID {
			t.Fatalf("not sorted by id at %d", i)
		}
		if in.Online {
			online++
		}
	}
	if len(got) != 123 || online != 120 {
		t.Fatalf("%d instances, %d online; want 123 and 120 (tags ANDed, offline kept)", len(got), online)
	}

	// By id: more than one filter's worth (50), and an id SSM does not
	// manage comes back as not Online, so a typo shows up.
	var ids []string
	for _, in := range got[:60] {
		ids = append(ids, in.ID)
	}
	ids = append(ids, "i-0123456789abcdef0")
	byID, err := discover.Instances(ctx, cl, nil, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(byID) != 61 {
		t.Fatalf("%d instances by id, want 61", len(byID))
	}
	for _, in := range byID {
		if in.ID == "i-0123456789abcdef0" && (in.Online || in.Ping != "NotManaged") {
			t.Fatalf("unknown id %+v", in)
		}
	}
}
