package awsapi

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/patchgate/patchgate/internal/memnet"
)

// rateLimited answers sts:GetCallerIdentity at most rate times a second
// (a token bucket of one second's burst on the bubble's clock) and
// Throttling above it, counting both.
type rateLimited struct {
	mu                sync.Mutex
	rate              float64
	tokens            float64
	at                time.Time
	served, throttled int
}

func (r *rateLimited) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	r.mu.Lock()
	now := time.Now()
	if r.at.IsZero() {
		r.tokens = r.rate
	}
	r.tokens = min(r.rate, r.tokens+now.Sub(r.at).Seconds()*r.rate)
	r.at = now
	ok := r.tokens >= 1
	if ok {
		r.tokens--
		r.served++
	} else {
		r.throttled++
	}
	r.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>x</RequestId></ErrorResponse>`)
		return
	}
	fmt.Fprint(w, `<GetCallerIdentityResponse><GetCallerIdentityResult><Account>111122223333</Account><Arn>arn:aws:iam::111122223333:user/u</Arn><UserId>U</UserId></GetCallerIdentityResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetCallerIdentityResponse>`)
}

// throttlesFor makes 300 calls back to back against a 10-a-second limit
// with the given retryer and returns how many were throttled.
func throttlesFor(t *testing.T, retryer func() aws.Retryer) int {
	var throttled int
	synctest.Test(t, func(t *testing.T) {
		rl := &rateLimited{rate: 10}
		srv := memnet.Serve(rl)
		defer srv.Close()
		cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"), config.WithBaseEndpoint(srv.URL),
			config.WithHTTPClient(srv.Client), config.WithRetryer(retryer),
			config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIA", "s", "")))
		if err != nil {
			t.Fatal(err)
		}
		c := sts.NewFromConfig(cfg)
		for i := range 300 {
			if _, err := c.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
		if rl.served != 300 {
			t.Fatalf("served %d, want 300", rl.served)
		}
		throttled = rl.throttled
	})
	return throttled
}

// Once throttled, a client spaces its attempts and settles near the
// account's rate: a loop of 300 reads against a 10-a-second limit is
// throttled a few times, not every few calls as without the pace. (Each
// throttle is a call AWS counts and a retry's backoff on the clock.)
func TestPacedAfterThrottling(t *testing.T) {
	pacedN := throttlesFor(t, func() aws.Retryer { return newRetryer(0) })
	unpacedN := throttlesFor(t, func() aws.Retryer { return newRetryer(0).(*paced).RetryerV2 })
	t.Logf("throttled: paced %d, unpaced %d", pacedN, unpacedN)
	if pacedN == 0 || pacedN > 15 || unpacedN < 2*pacedN {
		t.Fatalf("throttled %d times paced, %d unpaced: want 1 to 15, and under half of unpaced", pacedN, unpacedN)
	}
}
