//go:build !race

package dpaudit_test

const raceEnabled = false
