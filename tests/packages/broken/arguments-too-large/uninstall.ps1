Start-Process msiexec.exe -ArgumentList "/x app.msi /qn" -Wait
