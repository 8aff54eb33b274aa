from citekb.api.cli import main

raise SystemExit(main())
