package awsapi

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/patchgate/patchgate/internal/memnet"
)

// The targets of a run ask for their configurations at once: each set of
// credentials is checked with one sts:GetCallerIdentity, not one per
// account-region. STS holds every GetCallerIdentity until all eight
// targets wait, so without the sharing all eight would be in flight.
func TestFactoryAsksEachIdentityOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &fakeSTS{}
		gate := make(chan struct{})
		srv := memnet.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			if r.Form.Get("Action") == "GetCallerIdentity" {
				<-gate
			}
			s.ServeHTTP(w, r)
		}))
		defer srv.Close()
		base, err := LoadConfig(context.Background(), Options{Region: "us-east-1", Endpoint: srv.URL,
			Extra: []func(*config.LoadOptions) error{config.WithHTTPClient(srv.Client), config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIABASE", "s", ""))}})
		if err != nil {
			t.Fatal(err)
		}
		f := &Factory{Base: base, SessionName: "patchgate"}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for _, region := range []string{"us-east-1", "us-west-2", "eu-west-1", "ap-south-1"} {
			for _, target := range [][2]string{{"111122223333", ""}, {"444455556666", "arn:aws:iam::444455556666:role/t"}} {
				wg.Go(func() {
					if _, acct, err := f.Config(context.Background(), target[0], target[1], region); err != nil || acct != target[0] {
						errs <- err
					}
				})
			}
		}
		synctest.Wait() // every target waits: two in STS, six on them
		close(gate)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("config: %v", err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		n := map[string]int{}
		for _, c := range s.calls {
			n[c]++
		}
		if n["GetCallerIdentity"] != 2 || n["AssumeRole"] != 1 {
			t.Fatalf("STS calls %v; want GetCallerIdentity once per credentials (2) and AssumeRole once", n)
		}
	})
}
