// Package exitcode is patchgate's one table of process exit codes: every
// command and the action map their outcome through it, and README's table
// is tested against it.
package exitcode

import "github.com/patchgate/patchgate/internal/result"

// The codes.
const (
	OK           = 0
	Failed       = 1 // the command found a problem: invalid policies, a gate failed or a phase halted
	Usage        = 2 // usage, configuration, credentials, AWS authorization or I/O error
	Inconclusive = 3
	Cancelled    = 4
	Refused      = 5
	Changes      = 6 // plan --detailed-exitcode: there are changes
)

// Code is one row of the table.
type Code struct {
	Code    int
	Meaning string
}

// Table is every exit code with what it means, in order; README's table
// says the same (a test keeps them in step).
var Table = []Code{
	{OK, "success (valid policies, run passed, or a promoted phase waiting to become eligible)"},
	{Failed, "the command found a problem: invalid policies, a gate failed or a phase halted"},
	{Usage, "usage, configuration, credentials, AWS authorization or I/O error"},
	{Inconclusive, "`run`: inconclusive (evidence missing)"},
	{Cancelled, "`run`: cancelled"},
	{Refused, "`run`: refused (outside the window, in a freeze, change calendar closed, lock held)"},
	{Changes, "`plan --detailed-exitcode`: there are changes (0 then means none)"},
}

// ForStatus maps a run's status to its exit code. A status this table does
// not know is an error, never success.
func ForStatus(s result.Status) int {
	switch s {
	case result.StatusPassed, result.StatusSkipped, result.StatusDryRun, result.StatusWaiting:
		return OK
	case result.StatusFailed, result.StatusHalted:
		return Failed
	case result.StatusInconclusive, result.StatusRunning:
		return Inconclusive
	case result.StatusCancelled:
		return Cancelled
	case result.StatusRefused:
		return Refused
	}
	return Usage
}
