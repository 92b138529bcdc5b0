// Command gen rebuilds the example jobs' modules (go generate ./examples).
package main
