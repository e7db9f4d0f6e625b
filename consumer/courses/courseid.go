package courses

import "github.com/certd-dev/certd/internal/lms"

// Course ids are parsed by package lms, which validates job bodies; these
// names keep the per-course settings' callers unchanged.

// ErrInvalidCourseID is lms.ErrInvalidCourseID.
var ErrInvalidCourseID = lms.ErrInvalidCourseID

// CourseID is an Open edX course key split into its parts.
type CourseID = lms.CourseID

// ParseCourseID is lms.ParseCourseID.
func ParseCourseID(s string) (CourseID, error) { return lms.ParseCourseID(s) }
