Start-Process msiexec.exe -ArgumentList "/i app.msi /qn" -Wait
