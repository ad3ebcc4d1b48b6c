// Command jetaid is the jetai daemon. `jetaid runner …` is the per-model
// child process the daemon starts; people do not run it by hand.
package main

import (
	"fmt"
	"os"

	"github.com/jetai/jetai/daemon/runner/serve"
	"github.com/jetai/jetai/version"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "runner" {
		if err := serve.Main(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "jetaid runner:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && (os.Args[1] == "--version" || os.Args[1] == "-version") {
		fmt.Println("jetaid", version.Version)
		return
	}
	fmt.Fprintln(os.Stderr, "jetaid: the daemon is not built yet; only `jetaid runner` exists")
	os.Exit(2)
}
