"""The paper's story on one figure, from the data `make run` writes under out/.

(a) the paper's case, tanh(z1 + He3(z2)) learnt by a ReLU committee (examples/paper_tanh_he3.toml):
    DMFT against finite-size GD, every quantity of the tables, with residuals;
(b) He3(z1) under one-pass and multi-pass GD (examples/he3_reuse.toml): reusing the batch learns
    the direction, a fresh batch at every step does not.

    dmft compare examples/paper_tanh_he3.toml --out out
    dmft compare examples/he3_reuse.toml --schedules one-pass,multi-pass --out out
    python examples/paper_story.py out          # writes out/paper_story.png
"""
import argparse
import os
import sys

import dmft
from dmft.plotting import plot_story


def comparison(folder, stem):
    return dmft.compare(dmft.load(os.path.join(folder, stem + "_dmft.nc")),
                        dmft.load(os.path.join(folder, stem + "_sim.nc")))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default="out", help="where dmft compare wrote")
    parser.add_argument("--out", default=None, help="figure (default: FOLDER/paper_story.png)")
    args = parser.parse_args(argv)
    try:
        main_case = comparison(args.folder, "paper_tanh_he3")
        reuse = [comparison(args.folder, f"he3_reuse_{s}") for s in ("one-pass", "multi-pass")]
    except dmft.ProblemError as exc:
        print(f"paper_story: {exc} (run the two dmft compare commands of this file's "
              f"docstring first)", file=sys.stderr)
        return 2
    out = args.out or os.path.join(args.folder, "paper_story.png")
    plot_story(main_case, reuse, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
