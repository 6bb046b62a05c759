package bench

import (
	"os"
	"strconv"
	"testing"
)

func TestMeasureSmall(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("N"))
	if n == 0 {
		n = 200
	}
	r, _ := strconv.Atoi(os.Getenv("R"))
	if r == 0 {
		r = 1
	}
	ways := []Way{Patchgate, Naive}
	if os.Getenv("W") != "" {
		ways = []Way{Way(os.Getenv("W"))}
	}
	for _, way := range ways {
		f := Fleet{Instances: n, Regions: r}
		m, err := Measure(t, f, way, Config{Parallel: 16})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s %s: %+v", way, f, *m)
	}
}
