import sys

from jaxsc._src.cli import main

sys.exit(main())
