//go:build !long

package main

// longTests: the build tag long runs the long versions of the service proofs.
const longTests = false
