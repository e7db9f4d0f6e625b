package lms

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrInvalidCourseID is returned (wrapped) for a course id that is neither
// `course-v1:ORG+COURSE+RUN` nor `ORG/COURSE/RUN`. It is permanent: the job
// is bad, retrying cannot help.
var ErrInvalidCourseID = errors.New("invalid course id")

// CourseID is an Open edX course key split into its parts.
type CourseID struct{ Org, Course, Run string }

// idPart is the character set opaque-keys allows in each part ([\w\-~.:]),
// with \w taken in its Unicode sense as Python 3 does.
var idPart = regexp.MustCompile(`^[\p{L}\p{N}\p{Mn}_\-~.:]+$`)

// ParseCourseID parses a course id in either the current form
// (`course-v1:edX+DemoX+Demo_Course`, optionally followed by `+branch@...`
// or `+version@...`, which are ignored) or the old slashed form
// (`edX/DemoX/Demo_Course`). Anything else is ErrInvalidCourseID.
func ParseCourseID(s string) (CourseID, error) {
	orig := s
	s = strings.TrimSpace(s)
	var parts []string
	switch {
	case strings.HasPrefix(s, "course-v1:"):
		parts = strings.Split(strings.TrimPrefix(s, "course-v1:"), "+")
		if len(parts) > 3 {
			for _, p := range parts[3:] {
				if !strings.HasPrefix(p, "branch@") && !strings.HasPrefix(p, "version@") {
					return CourseID{}, fmt.Errorf("%w: %q: unexpected part %q", ErrInvalidCourseID, orig, p)
				}
			}
			parts = parts[:3]
		}
	case strings.Contains(s, "/"):
		parts = strings.Split(s, "/")
	default:
		return CourseID{}, fmt.Errorf("%w: %q: want course-v1:ORG+COURSE+RUN or ORG/COURSE/RUN", ErrInvalidCourseID, orig)
	}
	if len(parts) != 3 {
		return CourseID{}, fmt.Errorf("%w: %q: want three parts (organisation, course, run)", ErrInvalidCourseID, orig)
	}
	for _, p := range parts {
		if !idPart.MatchString(p) {
			return CourseID{}, fmt.Errorf("%w: %q: bad part %q", ErrInvalidCourseID, orig, p)
		}
	}
	return CourseID{Org: parts[0], Course: parts[1], Run: parts[2]}, nil
}

// String returns the id in the current `course-v1:ORG+COURSE+RUN` form.
func (c CourseID) String() string { return "course-v1:" + c.Org + "+" + c.Course + "+" + c.Run }

// Slashed returns the id in the old `ORG/COURSE/RUN` form.
func (c CourseID) Slashed() string { return c.Org + "/" + c.Course + "/" + c.Run }
