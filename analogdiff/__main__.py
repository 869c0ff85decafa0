from analogdiff.cli import main

raise SystemExit(main())
