package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// FileProblem says what is wrong with a model file.
type FileProblem int

// File problems. Only FileIsDir is a config error; the others are warnings:
// the file may appear later (a disk mounted after jetaid, a model still to
// be copied), and the pool checks the file again at every load.
const (
	FileMissing    FileProblem = iota + 1 // nothing at the path
	FileUnreadable                        // stat or open failed (permissions, I/O)
	FileIsDir                             // the path is a directory
	FileNotGGUF                           // it does not start with "GGUF"
)

// FileError is a model (or LoRA adapter) file that cannot be loaded as it
// is.
type FileError struct {
	Path    string
	Problem FileProblem
	Err     error // the system's error for FileUnreadable
	Adapter bool  // an adapter's file, not the model's
}

// Error says what is wrong: "model file PATH does not exist".
func (e *FileError) Error() string {
	kind := "model"
	if e.Adapter {
		kind = "adapter"
	}
	what := kind + " file " + e.Path
	switch e.Problem {
	case FileMissing:
		return what + " does not exist"
	case FileUnreadable:
		return fmt.Sprintf("%s cannot be read: %v", what, e.Err)
	case FileIsDir:
		return kind + " path " + e.Path + " is a directory, not a GGUF file"
	default:
		return what + " is not a GGUF file (it does not start with \"GGUF\")"
	}
}

func (e *FileError) Unwrap() error { return e.Err }

// Hint says what an operator does about it.
func (e *FileError) Hint() string {
	switch e.Problem {
	case FileUnreadable:
		return "make it readable by the user jetaid runs as (jetai under the packaged service)"
	case FileNotGGUF, FileIsDir:
		return "put a GGUF model file there"
	default:
		if e.Adapter {
			return "copy the adapter's GGUF file there"
		}
		return "copy a GGUF model file there, or import one with `jetai-ctl import FILE` and set the model's path to the file it prints"
	}
}

// CheckModelFile checks that path is a readable GGUF file and returns its
// information; the error is a *FileError. The config check calls it at
// validation and the pool before every load, so a file that appears later
// is found then.
func CheckModelFile(path string) (fs.FileInfo, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &FileError{Path: path, Problem: FileMissing}
	case err != nil:
		return nil, &FileError{Path: path, Problem: FileUnreadable, Err: unwrapPath(err)}
	case fi.IsDir():
		return nil, &FileError{Path: path, Problem: FileIsDir}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &FileError{Path: path, Problem: FileUnreadable, Err: unwrapPath(err)}
	}
	defer f.Close()
	magic := make([]byte, len(ggufMagic))
	if _, err := io.ReadFull(f, magic); err != nil || string(magic) != ggufMagic {
		return nil, &FileError{Path: path, Problem: FileNotGGUF}
	}
	return fi, nil
}
