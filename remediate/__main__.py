from remediate.ui.cli import main

raise SystemExit(main())
