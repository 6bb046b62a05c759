package awsapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// dialCounter counts the connections the SDK tries, refused or not.
type dialCounter struct{ n atomic.Int32 }

func (c *dialCounter) client() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithDialerOptions(func(d *net.Dialer) {
		d.Control = func(string, string, syscall.RawConn) error { c.n.Add(1); return nil }
	})
}

func closedEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr
}

func loadWith(endpoint string, extra ...func(*config.LoadOptions) error) Options {
	return Options{Region: "us-east-1", Endpoint: endpoint, RetryMaxBackoff: time.Millisecond,
		Extra: append([]func(*config.LoadOptions) error{
			config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")),
		}, extra...)}
}

// An endpoint where nothing listens fails after a few quick attempts with a
// message naming the operation and the endpoint, instead of the standard
// retryer's ten attempts with up to 20 s between them.
func TestUnreachableEndpointFailsFast(t *testing.T) {
	ep := closedEndpoint(t)
	tr := &dialCounter{}
	cfg, err := LoadConfig(context.Background(), loadWith(ep, config.WithHTTPClient(tr.client())))
	if err != nil {
		t.Fatal(err)
	}
	_, err = CallerIdentity(context.Background(), cfg, nil)
	if err == nil {
		t.Fatal("GetCallerIdentity against a closed port succeeded")
	}
	if !Unreachable(err) {
		t.Fatalf("a refused connection must classify as unreachable: %v", err)
	}
	for _, want := range []string{"sts:GetCallerIdentity", ep, "cannot reach"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if n := tr.n.Load(); n != unreachableAttempts {
		t.Fatalf("%d attempts at a refused endpoint, want %d", n, unreachableAttempts)
	}
}

// The wait budget for an unreachable endpoint: whatever the standard
// backoff says, at most unreachableDelay between attempts, and no attempt
// after the last; with the dial timeout the whole call stays under 15 s.
func TestFailFastRetryDelays(t *testing.T) {
	r := newRetryer(20 * time.Second).(*paced).RetryerV2.(failFast)
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	var total time.Duration
	attempts := 1
	for attempt := 1; ; attempt++ {
		d, err := r.RetryDelay(attempt, dial)
		if err != nil {
			break
		}
		if d > unreachableDelay {
			t.Fatalf("attempt %d waits %s", attempt, d)
		}
		total += d
		attempts++
	}
	if attempts != unreachableAttempts {
		t.Fatalf("%d attempts, want %d", attempts, unreachableAttempts)
	}
	if worst := total + time.Duration(attempts)*dialTimeout; worst >= 15*time.Second {
		t.Fatalf("worst case %s, want < 15s", worst)
	}
	// Throttling is not cut short: it keeps the standard backoff.
	if d, err := r.RetryDelay(1, fmt.Errorf("wrapped: %w", errors.New("ThrottlingException"))); err != nil || d < 0 {
		t.Fatalf("other errors keep the standard delay: %s %v", d, err)
	}
}

// A read-only call whose 2xx body arrives cut short is tried again.
func TestTruncatedBodyIsRetried(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:sts::111122223333:assumed-role/x/y</Arn><UserId>AROA:y</UserId><Account>111122223333</Account></GetCallerIdentityResult></GetCallerIdentityResponse>`
		w.Header().Set("Content-Type", "text/xml")
		if n.Add(1) == 1 {
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			_, _ = w.Write([]byte(body[:len(body)/2]))
			panic(http.ErrAbortHandler)
		}
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	cfg, err := LoadConfig(context.Background(), loadWith(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	id, err := CallerIdentity(context.Background(), cfg, nil)
	if err != nil || id.Account != "111122223333" {
		t.Fatalf("identity %+v, %v", id, err)
	}
	if n.Load() != 2 {
		t.Fatalf("%d attempts, want 2", n.Load())
	}
}

// A certificate that does not verify (an interception proxy, a wrong
// host) fails fast too, and says it could not reach the endpoint.
func TestTLSFailureFailsFast(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	ep := srv.URL
	tr := &dialCounter{}
	cfg, err := LoadConfig(context.Background(), loadWith(ep, config.WithHTTPClient(tr.client())))
	if err != nil {
		t.Fatal(err)
	}
	_, err = CallerIdentity(context.Background(), cfg, nil)
	if err == nil || !Unreachable(err) || !strings.Contains(err.Error(), ep) {
		t.Fatalf("want an unreachable error naming %s, got %v", ep, err)
	}
	if n := tr.n.Load(); n < 1 || n > unreachableAttempts {
		t.Fatalf("%d attempts, want 1..%d", n, unreachableAttempts)
	}
}
