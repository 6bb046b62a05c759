package policy

import "time"

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
