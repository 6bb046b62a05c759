//go:build integration

package lock_test

// The Parameter Store lock against moto's SSM: PutParameter with
// Overwrite=false must let exactly one of many concurrent runs in, and the
// ParameterAlreadyExists / ParameterNotFound errors must reach lock as the
// SDK's typed errors.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/patchgate/patchgate/internal/lock"
	"github.com/patchgate/patchgate/internal/motoenv"
)

func TestMotoLockConcurrentAcquire(t *testing.T) {
	cfg, _ := motoenv.FreshAccount(t)
	store := ssm.NewFromConfig(cfg)
	ctx := context.Background()
	policy := motoenv.Unique("web-")
	const runners, rounds = 8, 3

	for round := 1; round <= rounds; round++ {
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			locks   = make([]*lock.Lock, runners)
			errs    = make([]error, runners)
			now     = time.Now().UTC().Truncate(time.Second)
			runURLs = func(i int) string { return fmt.Sprintf("https://github.com/acme/fleet/actions/runs/%d%02d", round, i) }
		)
		for i := range runners {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				locks[i], errs[i] = lock.Acquire(ctx, store, policy, fmt.Sprintf("run-%d-%d", round, i), runURLs(i), time.Hour, now)
			}()
		}
		close(start)
		wg.Wait()

		var winner *lock.Lock
		for i, l := range locks {
			if l != nil {
				if winner != nil {
					t.Fatalf("round %d: two runs hold the lock: %s and %s", round, winner.Info.RunID, l.Info.RunID)
				}
				winner = l
				continue
			}
			var held *lock.HeldError
			if !errors.As(errs[i], &held) {
				t.Fatalf("round %d runner %d: want *lock.HeldError, got %v", round, i, errs[i])
			}
		}
		if winner == nil {
			t.Fatalf("round %d: nobody got the lock: %v", round, errs)
		}
		for i, err := range errs {
			if err == nil {
				continue
			}
			var held *lock.HeldError
			errors.As(err, &held)
			if held.Parameter != lock.Name(policy) || held.Holder.RunID != winner.Info.RunID || held.Holder.LockID != winner.Info.LockID ||
				!held.Holder.Started.Equal(now) || held.Holder.RunURL != winner.Info.RunURL {
				t.Fatalf("round %d runner %d sees holder %+v, want %+v", round, i, held.Holder, winner.Info)
			}
			if !strings.Contains(err.Error(), "patchgate unlock --lock-id "+winner.Info.LockID) {
				t.Fatalf("the refusal must say how to release the lock: %v", err)
			}
		}

		// What moto stored is the winner's record, as a String parameter.
		out, err := store.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(lock.Name(policy))})
		if err != nil {
			t.Fatal(err)
		}
		var stored lock.Info
		if err := json.Unmarshal([]byte(aws.ToString(out.Parameter.Value)), &stored); err != nil || stored.LockID != winner.Info.LockID || out.Parameter.Type != ssmtypes.ParameterTypeString {
			t.Fatalf("stored %+v (%v), type %s", stored, err, out.Parameter.Type)
		}

		if err := winner.Release(ctx); err != nil {
			t.Fatalf("round %d: release: %v", round, err)
		}
		var nf *ssmtypes.ParameterNotFound
		if _, err := store.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(lock.Name(policy))}); !errors.As(err, &nf) {
			t.Fatalf("round %d: the lock parameter must be gone after Release, got %v", round, err)
		}
		if err := winner.Release(ctx); err != nil {
			t.Fatalf("releasing twice must be harmless: %v", err)
		}
	}

	// Free again: the next run gets it at once.
	l, err := lock.Acquire(ctx, store, policy, "run-next", "", time.Hour, time.Now())
	if err != nil || l.Resumed {
		t.Fatalf("acquire after release: %v (resumed %v)", err, l != nil && l.Resumed)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestMotoLockResumeAndUnlock(t *testing.T) {
	cfg, _ := motoenv.FreshAccount(t)
	store := ssm.NewFromConfig(cfg)
	ctx := context.Background()
	policy := motoenv.Unique("db-")
	past := time.Now().Add(-3 * time.Hour)

	first, err := lock.Acquire(ctx, store, policy, "run-1", "", time.Hour, past)
	if err != nil {
		t.Fatal(err)
	}
	// A re-run of the same run id (after a crash) takes its lock over.
	again, err := lock.Acquire(ctx, store, policy, "run-1", "", time.Hour, time.Now())
	if err != nil || !again.Resumed || again.Info.LockID != first.Info.LockID {
		t.Fatalf("resume: %v %+v", err, again)
	}
	// Another run sees it, expired.
	_, err = lock.Acquire(ctx, store, policy, "run-2", "", time.Hour, time.Now())
	var held *lock.HeldError
	if !errors.As(err, &held) || !strings.Contains(err.Error(), "EXPIRED") {
		t.Fatalf("want an expired HeldError, got %v", err)
	}
	if _, err := lock.Unlock(ctx, store, policy, "not-the-id"); err == nil || !strings.Contains(err.Error(), "has lock id "+first.Info.LockID) {
		t.Fatalf("unlock with the wrong id must be refused, got %v", err)
	}
	if info, err := lock.Unlock(ctx, store, policy, first.Info.LockID); err != nil || info.RunID != "run-1" {
		t.Fatalf("unlock: %+v %v", info, err)
	}
	if _, err := lock.Unlock(ctx, store, policy, first.Info.LockID); err == nil || !strings.Contains(err.Error(), "nothing to release") {
		t.Fatalf("unlock of a free lock: %v", err)
	}
	// The first run's Release, after a hand release, is a no-op.
	if err := first.Release(ctx); err != nil {
		t.Fatal(err)
	}
}
