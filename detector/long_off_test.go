//go:build !long

package detector

// longTests: the build tag long runs the long soak.
const longTests = false
