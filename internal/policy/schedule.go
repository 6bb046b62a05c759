package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

func (s *Schedule) location() *time.Location {
	if s.Timezone == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(s.Timezone)
	if err != nil {
		return time.UTC // validated on load; UTC is only a fallback for hand-built policies
	}
	return loc
}

// WindowAt reports whether now falls in a window: a cron firing at or
// before now whose duration has not yet run out. When closed it also
// returns when the next window opens.
func (s *Schedule) WindowAt(now time.Time) (open bool, next time.Time) {
	sched, err := cronParser.Parse(s.Cron)
	if err != nil {
		return false, time.Time{}
	}
	loc := s.location()
	d := s.Duration.Duration
	if d == 0 {
		d = DefaultScheduleDuration
	}
	local := now.In(loc)
	// Windows are [firing, firing+duration). The first firing strictly after
	// now-duration opens a window containing now if it is not after now.
	start := sched.Next(local.Add(-d))
	if !start.After(local) {
		return true, time.Time{}
	}
	return false, sched.Next(local)
}

// FreezeAt returns the freeze that contains now's date (in the schedule's
// time zone), if any. Dates are inclusive.
func (s *Schedule) FreezeAt(now time.Time) (Freeze, bool) {
	day := now.In(s.location()).Format(dateLayout)
	for _, f := range s.Freezes {
		if f.From <= day && day <= f.To {
			return f, true
		}
	}
	return Freeze{}, false
}

// monthDays is the most days each month can have (February in a leap year).
var monthDays = [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// neverFires explains why a parsed 5-field cron can never fire, or returns
// "". Only the day-of-month can rule out a whole schedule: a day past the
// end of every month chosen ("30 2", "31 4,6,9,11"). It follows the cron
// library's rule for the two day fields: when both are restricted a day
// matches either (and every month has every weekday), so only a
// day-of-month restricted alone (day-of-week "*") can be impossible.
func neverFires(s cron.Schedule) string {
	spec, ok := s.(*cron.SpecSchedule)
	if !ok {
		return ""
	}
	const star = 1 << 63 // the library's mark for "*" or "?"
	if spec.Dom&star != 0 || spec.Dow&star == 0 {
		return ""
	}
	var days, months []int
	for d := 1; d <= 31; d++ {
		if spec.Dom&(1<<d) != 0 {
			days = append(days, d)
		}
	}
	for m := 1; m <= 12; m++ {
		if spec.Month&(1<<m) == 0 {
			continue
		}
		months = append(months, m)
		if len(days) > 0 && days[0] <= monthDays[m] {
			return ""
		}
	}
	names := make([]string, len(months))
	for i, m := range months {
		names[i] = time.Month(m).String()
	}
	what := "day " + strconv.Itoa(days[0]) + " does"
	if len(days) > 1 {
		what = "days " + joinInts(days) + " do"
	}
	return fmt.Sprintf("%s not exist in %s", what, strings.Join(names, ", "))
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}
