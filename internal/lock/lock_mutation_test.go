package lock

// Edge tests from mutation testing (make mutate; docs/testing.md): each
// pins a branch of the lock that no other test held.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

func TestHeldErrorSaysWhetherExpired(t *testing.T) {
	started := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	expires := started.Add(time.Hour)
	for _, tc := range []struct {
		name    string
		holder  Info
		now     time.Time
		expired bool
		where   string
	}{
		{"live, with a run URL", Info{LockID: "L", RunID: "7", RunURL: "https://x/runs/7", Started: started, Expires: expires}, started.Add(time.Minute), false, "held by https://x/runs/7 (run id 7"},
		{"live, no URL", Info{LockID: "L", RunID: "7", Started: started, Expires: expires}, started, false, "held by run 7 (run id 7"},
		{"at its expiry is not past it", Info{LockID: "L", RunID: "7", Started: started, Expires: expires}, expires, false, "held by run 7"},
		{"past its expiry", Info{LockID: "L", RunID: "7", Started: started, Expires: expires}, expires.Add(time.Second), true, "held by run 7"},
		// A hand-written lock has no expiry: never called expired.
		{"no expiry", Info{RunID: "unknown (value x)"}, started, false, "held by run unknown (value x)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := (&HeldError{Parameter: "/patchgate/locks/web", Holder: tc.holder, Now: tc.now}).Error()
			if got := strings.Contains(msg, "EXPIRED"); got != tc.expired {
				t.Fatalf("expired %v, want %v: %s", got, tc.expired, msg)
			}
			if !tc.expired && !tc.holder.Expires.IsZero() && !strings.Contains(msg, "expires 2026-11-22T04:00:00Z") {
				t.Fatalf("no expiry time: %s", msg)
			}
			if !strings.Contains(msg, tc.where) || !strings.Contains(msg, "--lock-id "+tc.holder.LockID) {
				t.Fatalf("%s: want %q and the lock id", msg, tc.where)
			}
		})
	}
}

// memStore is a Parameter Store of one map, with errors to inject: the
// simulator cannot make DeleteParameter fail between a read and a delete.
type memStore struct {
	params    map[string]string
	putErr    error
	getErr    error
	deleteErr error
	deletes   int
}

func (m *memStore) PutParameter(_ context.Context, in *ssm.PutParameterInput, _ ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	if m.putErr != nil {
		return nil, m.putErr
	}
	name := aws.ToString(in.Name)
	if _, ok := m.params[name]; ok && !aws.ToBool(in.Overwrite) {
		return nil, &ssmtypes.ParameterAlreadyExists{Message: aws.String("exists")}
	}
	m.params[name] = aws.ToString(in.Value)
	return &ssm.PutParameterOutput{}, nil
}

func (m *memStore) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	if m.getErr != nil {
		return nil, m.getErr
	}
	v, ok := m.params[aws.ToString(in.Name)]
	if !ok {
		return nil, &ssmtypes.ParameterNotFound{Message: aws.String("not found")}
	}
	return &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{Name: in.Name, Value: aws.String(v)}}, nil
}

func (m *memStore) DeleteParameter(_ context.Context, in *ssm.DeleteParameterInput, _ ...func(*ssm.Options)) (*ssm.DeleteParameterOutput, error) {
	m.deletes++
	if m.deleteErr != nil {
		return nil, m.deleteErr
	}
	delete(m.params, aws.ToString(in.Name))
	return &ssm.DeleteParameterOutput{}, nil
}

// A parameter someone wrote by hand is held by "unknown", with its value
// cut to 80 characters, and is never taken over, whatever run id asks.
func TestHandWrittenLockIsHeld(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	for _, tc := range []struct{ value, runID, holder string }{
		{"maintenance", "1", "unknown (value maintenance)"},
		{strings.Repeat("x", 80), "1", "unknown (value " + strings.Repeat("x", 80) + ")"},
		{strings.Repeat("y", 81), "1", "unknown (value " + strings.Repeat("y", 80) + "...)"},
		// Valid JSON without a run id: an empty run id must not match it.
		{`{"lockId":"L"}`, "", ""},
	} {
		st := &memStore{params: map[string]string{Name("web"): tc.value}}
		_, err := Acquire(ctx, st, "web", tc.runID, "", time.Hour, now)
		var held *HeldError
		if !errors.As(err, &held) || held.Holder.RunID != tc.holder {
			t.Fatalf("value %q: %v (holder %+v), want held by %q", tc.value, err, held, tc.holder)
		}
		if st.params[Name("web")] != tc.value {
			t.Fatalf("value %q was overwritten", tc.value)
		}
	}
	// A parameter with no value at all is held too.
	st := &memStore{params: map[string]string{}}
	if h, err := read(ctx, nilParam{st}, Name("web")); err != nil || h.RunID != "unknown (value )" {
		t.Fatalf("no parameter in the answer: %+v %v", h, err)
	}
}

// nilParam answers GetParameter with no Parameter.
type nilParam struct{ *memStore }

func (nilParam) GetParameter(context.Context, *ssm.GetParameterInput, ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	return &ssm.GetParameterOutput{}, nil
}

func TestLockErrorsNameTheAction(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	denied := errors.New("AccessDeniedException: not allowed")
	if _, err := Acquire(ctx, &memStore{params: map[string]string{}, putErr: denied}, "web", "1", "", time.Hour, now); err == nil ||
		!strings.Contains(err.Error(), "ssm:PutParameter") || !errors.Is(err, denied) {
		t.Fatalf("put: %v", err)
	}
	st := &memStore{params: map[string]string{Name("web"): `{"lockId":"other","runId":"9"}`}, getErr: denied}
	if _, err := Acquire(ctx, st, "web", "1", "", time.Hour, now); err == nil || !strings.Contains(err.Error(), "ssm:GetParameter") || !errors.Is(err, denied) {
		t.Fatalf("get after exists: %v", err)
	}

	st = &memStore{params: map[string]string{}}
	l, err := Acquire(ctx, st, "web", "1", "", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	st.deleteErr = denied
	if err := l.Release(ctx); err == nil || !strings.Contains(err.Error(), "ssm:DeleteParameter") || !errors.Is(err, denied) {
		t.Fatalf("release: %v", err)
	}
	if _, err := Unlock(ctx, st, "web", l.Info.LockID); err == nil || !strings.Contains(err.Error(), "ssm:DeleteParameter") {
		t.Fatalf("unlock: %v", err)
	}
	// Gone between the read and the delete: released all the same.
	st.deleteErr = &ssmtypes.ParameterNotFound{Message: aws.String("gone")}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("release of a lock deleted meanwhile: %v", err)
	}
	st.getErr = denied
	if err := l.Release(ctx); err == nil || !errors.Is(err, denied) {
		t.Fatalf("release when the read is denied: %v", err)
	}
	if _, err := Unlock(ctx, st, "web", l.Info.LockID); err == nil || !errors.Is(err, denied) || strings.Contains(err.Error(), "nothing to release") {
		t.Fatalf("unlock when the read is denied: %v", err)
	}
	var none *Lock
	if err := none.Release(ctx); err != nil {
		t.Fatalf("releasing no lock: %v", err)
	}
}

// TestAcquireRecordsTheRun: the lock holds who took it, when, and until when.
func TestAcquireRecordsTheRun(t *testing.T) {
	st := &memStore{params: map[string]string{}}
	now := time.Date(2026, 11, 22, 3, 0, 0, 0, time.FixedZone("x", 3600))
	l, err := Acquire(context.Background(), st, "web", "42", "https://x/runs/42", 90*time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	h, err := read(context.Background(), st, Name("web"))
	if err != nil {
		t.Fatal(err)
	}
	if h.RunID != "42" || h.RunURL != "https://x/runs/42" || !h.Started.Equal(now) || !h.Expires.Equal(now.Add(90*time.Minute)) || h.LockID != l.Info.LockID || h.LockID == "" {
		t.Fatalf("recorded %+v", h)
	}
	if h.Started.Location() != time.UTC {
		t.Fatalf("times are recorded in UTC: %v", h.Started)
	}
}
