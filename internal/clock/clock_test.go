package clock

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// On synctest's fake clock the scaled clock's sleep is exact: 10 clock
// minutes are 10 ms of (fake) wall time, whatever the machine's load.
func TestScaledAdvancesFaster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		c := NewScaled(start, 60000) // a minute per millisecond
		wall := time.Now()
		if err := c.Sleep(context.Background(), 10*time.Minute); err != nil {
			t.Fatal(err)
		}
		if got := c.Now().Sub(start); got != 10*time.Minute {
			t.Fatalf("after sleeping 10 clock minutes the clock advanced %v", got)
		}
		if slept := time.Since(wall); slept != 10*time.Millisecond {
			t.Fatalf("10 clock minutes at 60,000x took %v of wall time, want 10ms", slept)
		}
	})
}

func TestSleepHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (Real{}).Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if err := NewScaled(time.Now(), 10).Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
}
