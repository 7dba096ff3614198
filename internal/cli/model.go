package cli

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"github.com/berth-ml/berth/api"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-ml/berth/client"
	"github.com/berth-ml/berth/internal/cli/output"
	"github.com/spf13/cobra"
)

var modelColumns = []output.Column{
	{Header: "Name", Path: "name"},
	{Header: "Version", Path: "version"},
	{Header: "Format", Path: "format"},
	{Header: "FileName", Path: "fileName"},
	{Header: "Size", Path: "size"},
	{Header: "CreatedAt", Path: "createdAt"},
	{Header: "Description", Path: "description"},
}

func (a *app) modelCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "model", Short: "Register and manage models (each registration is a new version)"}
	var (
		name, path, description, out string
		tags                         []string
		version                      int
	)
	register := &cobra.Command{
		Use:   "register -n NAME --path FILE|DIR [--tag k=v]... [--description D]",
		Short: "Register a new version of a model from a file or a directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireName(name, "model"); err != nil {
				return err
			}
			st, err := os.Stat(path)
			if err != nil {
				return usageErrorf("--path: %v", err)
			}
			tagMap := map[string]string{}
			for _, t := range tags {
				k, v, ok := strings.Cut(t, "=")
				if !ok || k == "" {
					return usageErrorf("--tag %q must look like key=value", t)
				}
				tagMap[k] = v
			}
			c, ws, err := a.inWorkspace("", "")
			if err != nil {
				return err
			}
			up := client.ModelUpload{Name: name, FileName: filepath.Base(filepath.Clean(path)), Description: description, Tags: tagMap}
			if st.IsDir() {
				pr, pw := io.Pipe()
				go func() { pw.CloseWithError(tarFS(os.DirFS(path), pw)) }()
				up.Format, up.Body, up.Size = "tar.gz", pr, -1
			} else {
				f, err := os.Open(path)
				if err != nil {
					return err
				}
				defer f.Close()
				up.Format, up.Body, up.Size = "file", f, st.Size()
			}
			m, err := c.RegisterModel(cmd.Context(), ws, up)
			if err != nil {
				return err
			}
			return a.print(m, modelColumns)
		},
	}
	register.Flags().StringVarP(&name, "name", "n", "", "model name")
	register.Flags().StringVar(&path, "path", "", "the model file or directory")
	register.MarkFlagRequired("path")
	register.Flags().StringArrayVar(&tags, "tag", nil, "key=value (repeatable)")
	register.Flags().StringVar(&description, "description", "", "what the model is")

	list := a.listCommand("List model versions", func(ctx context.Context, c *client.Client, ws string) (any, error) {
		return c.ListModels(ctx, ws, name)
	}, modelColumns)
	list.Use = "list [-n NAME]"
	list.Flags().StringVarP(&name, "name", "n", "", "only this model's versions")

	target := func() (*client.Client, string, error) { return a.inWorkspace("model", name) }
	// model fetches -n NAME at --version (the latest by default).
	model := func(ctx context.Context) (*client.Client, string, *api.Model, error) {
		c, ws, err := target()
		if err != nil {
			return nil, "", nil, err
		}
		m, err := c.GetModel(ctx, ws, name, version)
		return c, ws, m, err
	}
	show := a.showCommand("model", "show -n NAME [--version V]", "Show a model version (the latest by default)",
		func(ctx context.Context, c *client.Client, ws, name string) (any, error) {
			return c.GetModel(ctx, ws, name, version)
		}, modelColumns)
	download := &cobra.Command{
		Use: "download -n NAME [--version V] [-f FILE]", Short: "Download a model version's artifact", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ws, m, err := model(cmd.Context())
			if err != nil {
				return err
			}
			dest := out
			if dest == "" {
				dest = m.FileName
				if m.Format == "tar.gz" {
					dest = fmt.Sprintf("%s-%d.tar.gz", m.Name, m.Version)
				}
			}
			f, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return err
			}
			if err := c.DownloadModel(cmd.Context(), ws, name, m.Version, f); err != nil {
				f.Close()
				os.Remove(dest)
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "Wrote %s version %d to %s (%d bytes, sha256 %s)\n", m.Name, m.Version, dest, m.Size, m.SHA256)
			return nil
		},
	}
	download.Flags().StringVarP(&out, "file", "f", "", "where to write it (default: its file name in this folder)")
	del := &cobra.Command{
		Use: "delete -n NAME --version V", Short: "Delete a model version", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if version < 1 {
				return usageErrorf("--version V must be a version number (1 or more)")
			}
			c, ws, err := target()
			if err != nil {
				return err
			}
			if err := c.DeleteModel(cmd.Context(), ws, name, version); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Deleted model %s version %d\n", name, version)
			return nil
		},
	}
	for _, c := range []*cobra.Command{download, del} {
		c.Flags().StringVarP(&name, "name", "n", "", "model name")
	}
	show.Flags().IntVar(&version, "version", 0, "version (default: the latest)")
	download.Flags().IntVar(&version, "version", 0, "version (default: the latest)")
	del.Flags().IntVar(&version, "version", 0, "the version to delete")
	del.MarkFlagRequired("version")
	cmd.AddCommand(register, list, show, download, del)
	return cmd
}

// tarFS writes a file system (a model directory, or the bundled model) as
// a gzipped tar stream: regular files and folders; symbolic links are
// refused rather than followed.
func tarFS(fsys fs.FS, w io.Writer) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symbolic link; models are uploaded without links", p)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = p
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := fsys.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}
