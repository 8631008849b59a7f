from remediate.cli import main

raise SystemExit(main())
