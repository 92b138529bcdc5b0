//go:build race

package dpaudit_test

const raceEnabled = true
