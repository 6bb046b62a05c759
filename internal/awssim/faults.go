package awssim

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Faults that real AWS and real networks show and that patchgate must
// survive without sending a patch twice or reporting a success it did not
// see (docs/failure-modes.md).

// SetListingDelay makes ListCommands and ListCommandInvocations leave out a
// command until d (clock time) after it was sent: both are eventually
// consistent in SSM, so a command just sent can be missing from them.
func (s *Sim) SetListingDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sc.ListingDelay = d
}

// listed reports whether c shows in listings at now.
func (s *Sim) listed(c *command, now time.Time) bool {
	return !now.Before(c.requested.Add(s.sc.ListingDelay))
}

// TruncateResponse makes the next n calls of op ("ssm:SendCommand") take
// effect and then answer 200 with a body cut off halfway (the connection
// closes before the declared Content-Length is reached).
func (s *Sim) TruncateResponse(op string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault(op).truncate += n
}

func (s *Sim) takeTruncate(op string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.faults[op]; f != nil && f.truncate > 0 {
		f.truncate--
		return true
	}
	return false
}

// writeTruncated declares the whole body's length, writes half of it and
// aborts the connection.
func writeTruncated(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body[:len(body)/2])
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	panic(http.ErrAbortHandler)
}

// ServerError makes the next n calls of op answer 500 InternalServerError
// without taking effect: from the caller's side it is as ambiguous as a
// lost response, but there is nothing to find.
func (s *Sim) ServerError(op string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault(op).fail += n
}

// RateLimit answers ThrottlingException to op ("ssm:SendCommand") above
// perSecond calls a second (clock time), with bursts of up to burst calls,
// as AWS's per-account, per-region API rate limits do. perSecond <= 0
// removes the limit.
func (s *Sim) RateLimit(op string, perSecond float64, burst int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if perSecond <= 0 {
		delete(s.limits, op)
		return
	}
	s.limits[op] = &bucket{rate: perSecond, burst: float64(max(burst, 1)), tokens: float64(max(burst, 1)), at: s.clock.Now()}
}

// bucket is a token bucket on the simulator's clock.
type bucket struct {
	rate, burst, tokens float64
	at                  time.Time
}

// take reports whether a call at now is within the rate. s.mu is held.
func (b *bucket) take(now time.Time) bool {
	if el := now.Sub(b.at).Seconds(); el > 0 {
		b.tokens = min(b.burst, b.tokens+el*b.rate)
		b.at = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Throttled returns how many calls were answered ThrottlingException
// (injected, by rate limit, or by ThrottleRate), by operation
// ("ssm:SendCommand").
func (s *Sim) Throttled() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.throttled))
	for k, v := range s.throttled {
		out[k] = v
	}
	return out
}

// ClosedEndpoint returns a loopback URL on which nothing listens: every
// connection to it is refused, as with a wrong --endpoint-url or an outage.
func ClosedEndpoint() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a closed loopback port: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("finding a closed loopback port: %w", err)
	}
	return "http://" + addr, nil
}
