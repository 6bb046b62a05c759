package clock

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestScaledAdvancesFaster(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewScaled(start, 60000) // a minute per millisecond
	if err := c.Sleep(context.Background(), 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := c.Now().Sub(start); got < 10*time.Minute {
		t.Fatalf("after sleeping 10 clock minutes the clock advanced only %v", got)
	}
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
