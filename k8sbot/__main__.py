from k8sbot.cli import main

raise SystemExit(main())
