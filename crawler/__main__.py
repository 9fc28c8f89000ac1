"""`python -m crawler`: the same as the `crawler` command."""

from crawler.cli import main

if __name__ == "__main__":
    main()
