package lock

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/patchgate/patchgate/internal/awssim"
)

func store(t *testing.T) (*awssim.Sim, *ssm.Client) {
	t.Helper()
	s := awssim.New(&awssim.Scenario{Accounts: []string{"111122223333"}}, nil)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, ssm.NewFromConfig(awssim.Config(srv.URL, "111122223333", "us-east-1"))
}

func TestAcquireReleaseAndHeld(t *testing.T) {
	_, cl := store(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	l, err := Acquire(ctx, cl, "web", "100", "https://github.com/a/b/actions/runs/100", time.Hour, now)
	if err != nil || l.Param != "/patchgate/locks/web" || l.Resumed {
		t.Fatalf("acquire: %v %+v", err, l)
	}
	_, err = Acquire(ctx, cl, "web", "200", "", time.Hour, now)
	var held *HeldError
	if !errors.As(err, &held) || held.Holder.RunID != "100" || !strings.Contains(err.Error(), l.Info.LockID) || !strings.Contains(err.Error(), "runs/100") {
		t.Fatalf("second run: %v", err)
	}
	// Expired locks are reported as such and still not broken.
	_, err = Acquire(ctx, cl, "web", "300", "", time.Hour, now.Add(2*time.Hour))
	if !errors.As(err, &held) || !strings.Contains(err.Error(), "EXPIRED") {
		t.Fatalf("expired: %v", err)
	}
	// The same run id takes its own lock back (resume after a crash).
	again, err := Acquire(ctx, cl, "web", "100", "", time.Hour, now)
	if err != nil || !again.Resumed || again.Info.LockID != l.Info.LockID {
		t.Fatalf("resume: %v %+v", err, again)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("releasing twice is harmless: %v", err)
	}
	if _, err := Acquire(ctx, cl, "web", "200", "", time.Hour, now); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

func TestLostPutParameterResponseIsStillOurs(t *testing.T) {
	s, cl := store(t)
	s.DropResponse("ssm:PutParameter", 1)
	l, err := Acquire(context.Background(), cl, "web", "1", "", time.Hour, time.Now())
	if err != nil {
		t.Fatalf("a lock whose creation response was lost must still be ours: %v", err)
	}
	if l.Resumed {
		t.Fatal("not a resume: the same acquisition")
	}
}

func TestUnlockNeedsTheLockID(t *testing.T) {
	_, cl := store(t)
	ctx := context.Background()
	l, err := Acquire(ctx, cl, "web", "1", "", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Unlock(ctx, cl, "web", "wrong"); err == nil || !strings.Contains(err.Error(), l.Info.LockID) {
		t.Fatalf("wrong id: %v", err)
	}
	if _, err := Unlock(ctx, cl, "web", l.Info.LockID); err != nil {
		t.Fatal(err)
	}
	if _, err := Unlock(ctx, cl, "web", l.Info.LockID); err == nil || !strings.Contains(err.Error(), "nothing to release") {
		t.Fatalf("no lock: %v", err)
	}
}

func TestReleaseLeavesAnotherRunsLock(t *testing.T) {
	_, cl := store(t)
	ctx := context.Background()
	mine, _ := Acquire(ctx, cl, "web", "1", "", time.Hour, time.Now())
	if _, err := Unlock(ctx, cl, "web", mine.Info.LockID); err != nil {
		t.Fatal(err)
	}
	theirs, err := Acquire(ctx, cl, "web", "2", "", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Someone released our lock by hand and another run took it: say so, touch nothing.
	if err := mine.Release(ctx); err == nil || !strings.Contains(err.Error(), "belongs to run 2") {
		t.Fatalf("release of a lock now held by another run: %v", err)
	}
	if _, err := Acquire(ctx, cl, "web", "3", "", time.Hour, time.Now()); err == nil {
		t.Fatalf("run 1's release deleted run 2's lock %s", theirs.Info.LockID)
	}
}
