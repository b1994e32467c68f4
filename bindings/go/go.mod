module ember.dev/ember

go 1.19
